//! What the cargo-fuzz targets in `fuzz/` call (only under `--cfg fuzzing`, which cargo-fuzz
//! sets). Not an API: names and signatures here change without notice.
//!
//! Each function checks the invariants the property tests check (the same code: see
//! `store::codec::checks`, `key::checks`, `store::redis::checks`) and panics on a violation.

pub use crate::key::checks::{Arg, Wrapper};

/// The Redis payload decoder on arbitrary bytes, as they are and behind the format's
/// magic (so that the fuzzer reaches the header parser at once).
pub fn decode(bytes: &[u8]) {
    crate::store::codec::checks::arbitrary_bytes(bytes);
    let mut framed = crate::store::codec::MAGIC.to_vec();
    framed.extend_from_slice(bytes);
    crate::store::codec::checks::arbitrary_bytes(&framed);
}

/// Key building on an arbitrary path, arguments and template values.
pub fn key(path: &str, batch: &[Arg], template: (&str, &str)) {
    use crate::key::checks;
    for args in batch {
        checks::keeps_serde_jsons_text(args);
        checks::argument_key_fits_and_is_clean(path, &(args,));
    }
    let batch: Vec<(&Arg,)> = batch.iter().map(|args| (args,)).collect();
    checks::distinct_arguments_never_share_a_key(&batch);
    checks::key_new_accepts_exactly_valid_text(path);
    checks::one_placeholder_templates_are_injective(template.0, template.1);
}

/// Pattern invalidation on an arbitrary store prefix, glob and keys: the memory store and
/// the Redis store remove the same keys.
pub fn pattern(prefix: &str, pattern: &str, keys: &[&str]) {
    for key in keys {
        crate::store::redis::checks::pattern_stores_agree(prefix, pattern, key);
    }
    crate::store::redis::checks::pattern_stores_agree(prefix, pattern, pattern);
}

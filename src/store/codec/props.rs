//! Hostile input for the payload decoder, as property tests. `PROPTEST_CASES` raises the
//! case counts for a long run. The invariants live in `checks`, which the cargo-fuzz
//! target `decode` (`fuzz/`, issue 8) calls too: coverage-guided fuzzing runs on the stable
//! toolchain with `RUSTC_BOOTSTRAP=1` (`scripts/fuzz.sh`; about 14.3 million executions in 10
//! minutes on this project's 2-core machine, no crash).

use proptest::prelude::*;

use super::checks::{arbitrary_bytes, assert_reframes, decoded};
use super::*;
use crate::test_support::proptest_config::cases;

/// Keys and tokens as the header carries them: any text without a newline.
fn versions() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[^\n]{0,24}", "[^\n]{0,24}"), 0..5)
}

fn stamps() -> impl Strategy<Value = Stamps> {
    // The computation time travels on the timing line: without one it is 0 (as the Redis
    // store always writes one, and entries from before it have neither).
    (
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        any::<u64>(),
    )
        .prop_map(|(created_at_ms, fresh_until_ms, delta_us)| Stamps {
            created_at_ms,
            fresh_until_ms,
            delta_us: if fresh_until_ms.is_some() {
                delta_us
            } else {
                0
            },
        })
}

/// Bodies of every kind: random bytes, JSON text, and long runs that compress well.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        "\\PC{0,200}".prop_map(|text| serde_json::to_vec(&text).unwrap_or_default()),
        (any::<u8>(), 0..5000_usize).prop_map(|(byte, len)| vec![byte; len]),
    ]
}

/// Everything `frame` takes: body, its format, snapshot, stamps, compression threshold.
type Entry = (
    Vec<u8>,
    BodyFormat,
    Vec<(String, String)>,
    Stamps,
    Option<usize>,
);

fn entry() -> impl Strategy<Value = Entry> {
    (
        body(),
        prop_oneof![Just(BodyFormat::Json), Just(BodyFormat::Ron)],
        versions(),
        stamps(),
        proptest::option::of(0..1024_usize),
    )
}

/// Text that looks like a header: the magic, then lines of numbers, words and spaces.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[0-9]{0,25}",
        Just("18446744073709551616".to_owned()),
        Just("4294967296".to_owned()),
        "[0-9]{1,3} [0-9]{0,3}",
        "[-+ a-z0-9]{0,6}",
        Just(String::new()),
    ];
    (
        proptest::collection::vec(line, 0..8),
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(lines, tail)| {
            let mut bytes = MAGIC.to_vec();
            for line in lines {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(&tail);
            bytes
        })
}

/// How many bytes of `framed` are header: everything before the body as stored.
fn header_len(framed: &[u8]) -> usize {
    let header = header(framed).expect("a framed payload has a header");
    framed.len() - header.raw_body.len()
}

proptest! {
    #![proptest_config(cases(1000))]

    /// Any bytes at all: an error or a payload, never a panic; without the magic, always
    /// the format error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        arbitrary_bytes(&bytes);
    }

    /// Header-shaped garbage (huge numbers, missing lines, stray words) reaches the field
    /// parsers: an error or a payload that re-frames, never a panic nor a huge allocation
    /// (a version count beyond the payload is refused before it sizes anything).
    #[test]
    fn header_like_garbage_never_panics(bytes in header_like()) {
        match unframe(&bytes) {
            Ok(framed) => {
                prop_assert!(framed.versions.len() <= bytes.len() / 2);
                assert_reframes(&framed);
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    /// Any framed payload decodes to what was framed, compressed or not; `header` agrees.
    #[test]
    fn framed_payloads_round_trip((body, format, versions, stamps, threshold) in entry()) {
        let framed = frame(&body, format, &versions, stamps, threshold);
        let back = unframe(&framed).expect("a framed payload decodes");
        prop_assert_eq!(decoded(&back), (stamps, versions.clone(), format, body.clone()));
        let head = header(&framed).expect("its header reads");
        let compressed = threshold.is_some_and(|t| body.len() > t);
        prop_assert_eq!(head.flags & FLAG_COMPRESSED != 0, compressed);
        prop_assert_eq!(head.stamps, stamps);
        prop_assert_eq!(head.versions.len(), versions.len());
    }

    /// A payload cut short: inside the header always an error; inside the body, the
    /// header as written and a prefix of the body (or, compressed, an error).
    #[test]
    fn truncated_payloads_err_or_give_a_prefix(
        (body, format, versions, stamps, threshold) in entry(),
        cut in any::<prop::sample::Index>(),
    ) {
        let framed = frame(&body, format, &versions, stamps, threshold);
        let header_len = header_len(&framed);
        let cut = cut.index(framed.len() + 1);
        let result = unframe(&framed[..cut]);
        if cut < header_len {
            prop_assert!(result.is_err(), "cut at {} of a {}-byte header", cut, header_len);
        } else if let Ok(back) = result {
            prop_assert_eq!(back.stamps, stamps);
            prop_assert_eq!(back.versions.len(), versions.len());
            prop_assert!(body.starts_with(&back.body), "a prefix of the body");
            if threshold.is_none_or(|t| body.len() <= t) {
                prop_assert_eq!(back.body.len(), cut - header_len);
            }
        } else {
            prop_assert!(threshold.is_some_and(|t| body.len() > t), "only lz4 refuses a cut body");
        }
    }

    /// Corrupted bytes (a few overwritten, or one bit flipped): never a panic; what still
    /// decodes re-frames; a flip in the magic is the format error, and a flip in an
    /// uncompressed body changes that byte and nothing else.
    #[test]
    fn corrupted_payloads_never_panic(
        (body, format, versions, stamps, threshold) in entry(),
        writes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        flip in (any::<prop::sample::Index>(), 0..8_u8),
    ) {
        let good = frame(&body, format, &versions, stamps, threshold);
        let mut bad = good.clone();
        let len = bad.len();
        for (at, byte) in &writes {
            bad[at.index(len)] = *byte;
        }
        if let Ok(framed) = unframe(&bad) {
            assert_reframes(&framed);
        }

        let mut flipped = good.clone();
        let at = flip.0.index(flipped.len());
        flipped[at] ^= 1 << flip.1;
        let header_len = header_len(&good);
        let compressed = threshold.is_some_and(|t| body.len() > t);
        match unframe(&flipped) {
            Ok(framed) => {
                prop_assert!(at >= MAGIC.len(), "a flipped magic is refused");
                if at >= header_len && !compressed {
                    let mut expected = body.clone();
                    expected[at - header_len] ^= 1 << flip.1;
                    prop_assert_eq!(decoded(&framed), (stamps, versions, format, expected));
                } else {
                    assert_reframes(&framed);
                }
            }
            Err(DecodeError::Format { .. }) => prop_assert!(at < MAGIC.len()),
            Err(_) => prop_assert!(at < header_len || compressed, "an uncompressed body is never refused"),
        }
    }
}

#[test]
fn a_size_claim_beyond_the_lz4_ratio_is_refused_before_allocating() {
    // A real compressed entry whose size prefix is rewritten to claim 4 GiB: lz4_flex would
    // zero-allocate the claimed size and then decode the block fine.
    let body = serde_json::to_vec(&"x".repeat(5000)).unwrap();
    let mut framed = frame(&body, BodyFormat::Json, &[], stamps_for_test(), Some(16));
    let at = header_len(&framed);
    framed[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    match unframe(&framed) {
        Err(DecodeError::Decompress(reason)) => {
            assert!(reason.contains("claims 4294967295 bytes"), "{reason}")
        }
        other => panic!(
            "expected a refused size claim, got {:?}",
            other.map(|framed| framed.body.len())
        ),
    }
    // No size at all.
    assert!(matches!(
        unframe(b"QC2\n1\n0\n0\n\x01\x02"),
        Err(DecodeError::Decompress(_))
    ));
}

#[test]
fn the_lz4_ratio_bound_holds_for_the_most_compressible_body() {
    // One long run of one byte is lz4's best case: its size claim stays within the bound
    // the decoder checks, and it decodes.
    let body = vec![0_u8; 4 << 20];
    let framed = frame(&body, BodyFormat::Json, &[], stamps_for_test(), Some(0));
    let raw = &framed[header_len(&framed)..];
    let claimed = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    assert_eq!(claimed, body.len());
    assert!(
        claimed <= (raw.len() - 4) * LZ4_MAX_RATIO,
        "{} -> {claimed}",
        raw.len()
    );
    assert_eq!(unframe(&framed).unwrap().body.len(), body.len());
}

fn stamps_for_test() -> Stamps {
    Stamps {
        created_at_ms: 1,
        fresh_until_ms: Some(2),
        delta_us: 3,
    }
}

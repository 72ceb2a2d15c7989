//! The decoder's invariants on hostile input, shared by the property tests (`props`) and
//! the cargo-fuzz target `decode` (through `querycache::__fuzz`): they panic on a
//! violation, which both harnesses report with the input.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use super::*;

/// What decoding gave, owned, to compare two decodings.
pub(crate) fn decoded(framed: &Framed<'_>) -> (Stamps, Vec<(String, String)>, BodyFormat, Vec<u8>) {
    (
        framed.stamps,
        framed
            .versions
            .iter()
            .map(|(k, t)| ((*k).to_owned(), (*t).to_owned()))
            .collect(),
        framed.format,
        framed.body.to_vec(),
    )
}

/// Whatever decodes re-encodes to a payload that decodes the same, compressed or not: the
/// decoder accepts nothing `frame` could not have written (but for spelling, like `+5`
/// for `5`).
pub(crate) fn assert_reframes(framed: &Framed<'_>) {
    let (stamps, versions, format, body) = decoded(framed);
    for compress_above in [None, Some(0)] {
        let again = frame(&body, format, &versions, stamps, compress_above);
        let back = unframe(&again).expect("a re-framed payload decodes");
        assert_eq!(
            decoded(&back),
            (stamps, versions.clone(), format, body.clone()),
            "re-framed with compression above {compress_above:?}"
        );
    }
}

/// Any bytes at all: an error or a payload, never a panic (nor an allocation beyond what
/// the bytes can hold: a version count or an lz4 size claim larger than the payload is
/// refused before it sizes anything); `unframe` reads what `header` reads; what decodes
/// re-frames; without the magic, always the format error.
pub(crate) fn arbitrary_bytes(bytes: &[u8]) {
    let framed = unframe(bytes);
    let head = header(bytes);
    if bytes.starts_with(MAGIC) {
        if let Ok(framed) = &framed {
            assert!(
                framed.versions.len() <= bytes.len() / 2,
                "more versions than bytes"
            );
            assert!(
                framed.body.len() <= bytes.len().saturating_mul(LZ4_MAX_RATIO),
                "a body larger than the lz4 ratio allows"
            );
            assert_reframes(framed);
        }
        assert!(
            framed.is_err() || head.is_ok(),
            "unframe reads what header reads"
        );
        if let Ok(head) = &head {
            let (n, lines) = snapshot_lines(bytes).expect("snapshot_lines reads what header reads");
            assert_eq!(n, head.versions.len());
            assert!(
                lines.eq(head
                    .versions
                    .iter()
                    .map(|(k, t)| (k.as_bytes(), t.as_bytes()))),
                "the same snapshot"
            );
        }
        if let Err(error) = &framed {
            assert!(!error.to_string().is_empty());
        }
    } else {
        let format_error = |e: &DecodeError| matches!(e, DecodeError::Format { .. });
        assert!(
            framed.err().is_some_and(|e| format_error(&e)),
            "the format error"
        );
        assert!(
            head.err().is_some_and(|e| format_error(&e)),
            "the format error"
        );
    }
}

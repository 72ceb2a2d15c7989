//! How shared stores keep an entry: a small text header, then the value as JSON, or as RON
//! when JSON would not carry it exactly (see [`body`]), compressed above a threshold.
//!
//! ```text
//! QC2\n                       magic and format version
//! <flags>\n                   decimal bit set: 1 = body compressed (lz4, size-prepended),
//!                             2 = timing line, 4 = body is RON (else JSON)
//! <created_at_ms>\n           when the entry was stored, ms since the Unix epoch
//! <fresh_until_ms> <delta_us>\n  (flag 2) when its TTL passes, ms since the Unix epoch, and
//!                             how long its computation took, in µs; the entry itself lives
//!                             longer in Redis when it may be served stale
//! <n>\n                       number of tag versions in the snapshot
//! <version key>\n<token>\n    n times: the Redis key of a tag's version, and its token
//! <body>                      serde_json or RON bytes, or their lz4 block
//! ```
//!
//! Format version 1 (`QC1`) kept every body as JSON, which wrote `Some(None)` as `null`
//! (read back as `None`): its entries are not read any more. They are a clean miss (the
//! Lua scripts and [`header`] refuse the magic), overwritten by the next computation, and
//! Redis expires the rest with their TTL.
//!
//! The header is text on purpose: the Redis store's Lua scripts read it to compare the
//! snapshot with the current versions on the server, so a hit costs one round trip (in
//! cluster mode the store reads it with [`header`] instead, see `store::redis`).
//! Keys and tokens never contain a newline (tags and prefixes reject control characters).
//!
//! Decoding is defensive: another format version, a truncated header, a body that does not
//! decompress or does not parse is a [`DecodeError`], which the cache treats as a miss.

use std::borrow::Cow;

/// Magic and format version, first line of every entry.
pub(crate) const MAGIC: &[u8] = b"QC2\n";

/// The magic's text, as errors name it.
const MAGIC_TEXT: &str = "QC2";

/// Body is lz4-compressed.
pub(crate) const FLAG_COMPRESSED: u32 = 1;

/// A timing line follows the creation time. Entries written before it existed have none:
/// they are fresh until Redis expires them.
pub(crate) const FLAG_TIMING: u32 = 2;

/// Body is RON ([`BodyFormat::Ron`]); JSON without it.
pub(crate) const FLAG_RON: u32 = 4;

pub(crate) mod body;
pub(crate) use body::{Body, BodyFormat};

/// When an entry was written, when its TTL passes, and how long it took to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamps {
    pub(crate) created_at_ms: u64,
    /// `None` in entries without a timing line.
    pub(crate) fresh_until_ms: Option<u64>,
    pub(crate) delta_us: u64,
}

/// Why a stored payload could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not written by this format version (or not by querycache at all).
    #[error("unknown payload format (expected header {expected:?})")]
    Format { expected: &'static str },
    /// The header ends early or a field is not what it should be.
    #[error("malformed payload header: {0}")]
    Header(&'static str),
    /// The compressed body does not decompress.
    #[error("payload body does not decompress: {0}")]
    Decompress(String),
}

/// A decoded header and its (decompressed) body.
#[derive(Debug)]
pub(crate) struct Framed<'a> {
    pub(crate) stamps: Stamps,
    /// The snapshot. On a single server the Lua scripts compare it there; the tiered store
    /// reads it back to fill its memory tier.
    pub(crate) versions: Vec<(&'a str, &'a str)>,
    /// How the body is written.
    pub(crate) format: BodyFormat,
    pub(crate) body: Cow<'a, [u8]>,
}

/// Frames `body` (written as `format`) with its snapshot; compresses when `compress_above`
/// is set and the body is longer.
pub(crate) fn frame(
    body: &[u8],
    format: BodyFormat,
    versions: &[(String, String)],
    stamps: Stamps,
    compress_above: Option<usize>,
) -> Vec<u8> {
    let compressed = compress_above
        .filter(|&threshold| body.len() > threshold)
        .map(|_| lz4_flex::compress_prepend_size(body));
    let timing = stamps
        .fresh_until_ms
        .map(|fresh_until| format!("{fresh_until} {}\n", stamps.delta_us));
    let flags = if compressed.is_some() {
        FLAG_COMPRESSED
    } else {
        0
    } | if timing.is_some() { FLAG_TIMING } else { 0 }
        | match format {
            BodyFormat::Json => 0,
            BodyFormat::Ron => FLAG_RON,
        };
    let body: &[u8] = compressed.as_deref().unwrap_or(body);
    let header_len: usize = 64
        + versions
            .iter()
            .map(|(k, t)| k.len() + t.len() + 2)
            .sum::<usize>();
    let mut out = Vec::with_capacity(header_len + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("{flags}\n{}\n", stamps.created_at_ms).as_bytes());
    if let Some(timing) = timing {
        out.extend_from_slice(timing.as_bytes());
    }
    out.extend_from_slice(format!("{}\n", versions.len()).as_bytes());
    for (key, token) in versions {
        out.extend_from_slice(key.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(token.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(body);
    out
}

/// A framed payload's header, its body left as stored (compressed or not).
#[derive(Debug)]
pub(crate) struct Header<'a> {
    pub(crate) flags: u32,
    pub(crate) stamps: Stamps,
    /// The snapshot: `(version key, token)` pairs.
    pub(crate) versions: Vec<(&'a str, &'a str)>,
    /// The body as stored: lz4 when `flags` has [`FLAG_COMPRESSED`].
    pub(crate) raw_body: &'a [u8],
}

/// Reads a framed payload's header only (the body is not decompressed): what the Redis
/// store needs to validate an entry in cluster mode before handing it over.
pub(crate) fn header(bytes: &[u8]) -> Result<Header<'_>, DecodeError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(DecodeError::Format {
        expected: MAGIC_TEXT,
    })?;
    let mut lines = Lines { rest };
    let flags: u32 = lines.number("flags")?;
    if flags & !(FLAG_COMPRESSED | FLAG_TIMING | FLAG_RON) != 0 {
        return Err(DecodeError::Header("unknown flags"));
    }
    let created_at_ms: u64 = lines.number("created_at")?;
    let mut stamps = Stamps {
        created_at_ms,
        fresh_until_ms: None,
        delta_us: 0,
    };
    if flags & FLAG_TIMING != 0 {
        let timing = lines.line("timing")?;
        let space = find_byte(b' ', timing).ok_or(DecodeError::Header("timing"))?;
        let (fresh_until, delta) = (&timing[..space], &timing[space + 1..]);
        stamps.fresh_until_ms =
            Some(decimal(fresh_until).ok_or(DecodeError::Header("fresh_until"))?);
        stamps.delta_us = decimal(delta).ok_or(DecodeError::Header("delta"))?;
    }
    let n: usize = lines.number("version count")?;
    // Each version needs at least two bytes ("\n\n"): a count larger than what remains is
    // garbage, and must not size an allocation.
    if n > lines.rest.len() / 2 {
        return Err(DecodeError::Header("version count exceeds the payload"));
    }
    let mut versions = Vec::with_capacity(n);
    for _ in 0..n {
        let key = lines.text("version key")?;
        let token = lines.text("version token")?;
        versions.push((key, token));
    }
    Ok(Header {
        flags,
        stamps,
        versions,
        raw_body: lines.rest,
    })
}

/// The snapshot of a framed payload, read as bytes and lazily: how many versions its header
/// records, and their `(version key, token)` lines (fewer if the payload ends early).
///
/// What the Redis store's hit path compares with the versions it read, without building a
/// [`Header`] (the payload's header is read again, by [`unframe`], when it is decoded).
/// Only the lines before the snapshot are checked, as the get script checks them:
/// whatever [`header`] reads, this reads the same; a payload it lets through that
/// [`unframe`] refuses is refused there, before anything is served.
pub(crate) fn snapshot_lines(bytes: &[u8]) -> Result<(usize, SnapshotLines<'_>), DecodeError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(DecodeError::Format {
        expected: MAGIC_TEXT,
    })?;
    let mut lines = Lines { rest };
    let flags: u32 = lines.number("flags")?;
    lines.line("created_at")?;
    if flags & FLAG_TIMING != 0 {
        lines.line("timing")?;
    }
    let n: usize = lines.number("version count")?;
    if n > lines.rest.len() / 2 {
        return Err(DecodeError::Header("version count exceeds the payload"));
    }
    Ok((n, SnapshotLines { lines, left: n }))
}

/// The `(version key, token)` lines of a payload's snapshot: see [`snapshot_lines`].
pub(crate) struct SnapshotLines<'a> {
    lines: Lines<'a>,
    left: usize,
}

impl<'a> Iterator for SnapshotLines<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let key = self.lines.line("version key").ok()?;
        let token = self.lines.line("version token").ok()?;
        Some((key, token))
    }
}

/// Reads a framed payload.
pub(crate) fn unframe(bytes: &[u8]) -> Result<Framed<'_>, DecodeError> {
    let Header {
        flags,
        stamps,
        versions,
        raw_body,
    } = header(bytes)?;
    let body = if flags & FLAG_COMPRESSED != 0 {
        Cow::Owned(decompress(raw_body)?)
    } else {
        Cow::Borrowed(raw_body)
    };
    let format = if flags & FLAG_RON != 0 {
        BodyFormat::Ron
    } else {
        BodyFormat::Json
    };
    Ok(Framed {
        stamps,
        versions,
        format,
        body,
    })
}

/// The most bytes one byte of an lz4 block can expand to: a match's length grows by 255
/// per extension byte, so no block decompresses to more than 255 times its size.
const LZ4_MAX_RATIO: usize = 255;

/// Decompresses an lz4 block whose first four bytes are its size (little endian).
///
/// The size is checked before anything is allocated: lz4_flex allocates (and zeroes) as
/// many bytes as the size claims, so a garbage payload claiming 4 GiB would otherwise ask
/// for 4 GiB — and an allocation failure aborts the process rather than erring.
fn decompress(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let claimed = match raw {
        [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
        _ => {
            return Err(DecodeError::Decompress(
                "no size before the lz4 block".into(),
            ));
        }
    };
    let possible = (raw.len() - 4).saturating_mul(LZ4_MAX_RATIO);
    if claimed > possible {
        return Err(DecodeError::Decompress(format!(
            "the block claims {claimed} bytes, more than {} compressed bytes can hold",
            raw.len() - 4
        )));
    }
    lz4_flex::decompress_size_prepended(raw).map_err(|e| DecodeError::Decompress(e.to_string()))
}

/// An unsigned decimal number, as `str::parse::<u64>` reads it (digits after an optional
/// `+`), from its bytes.
fn decimal(text: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(b"+").unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_u64, |value, &byte| {
        if !byte.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
    })
}

/// Where `byte` first is in `bytes`. The header's lines are short (tens of bytes), and the
/// hit path reads each of them, twice (see `store::redis`): eight bytes at a time, inline,
/// costs a third of `memchr`'s calls, whose dispatch outweighs the search at these lengths.
#[inline]
fn find_byte(byte: u8, bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(byte);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut le = [0_u8; 8];
        le.copy_from_slice(word);
        let x = u64::from_le_bytes(le) ^ pattern;
        // A zero byte of `x` (the first one exactly: borrows only run upwards).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| at + i)
}

struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    fn line(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = find_byte(b'\n', self.rest).ok_or(DecodeError::Header(what))?;
        let (line, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        Ok(line)
    }

    fn text(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.line(what)?).map_err(|_| DecodeError::Header(what))
    }

    /// A line holding an unsigned decimal number, read from its bytes (what `str::parse`
    /// accepts: digits, after an optional `+`; nothing else, and no overflow of `N`).
    fn number<N: TryFrom<u64>>(&mut self, what: &'static str) -> Result<N, DecodeError> {
        decimal(self.line(what)?)
            .and_then(|value| N::try_from(value).ok())
            .ok_or(DecodeError::Header(what))
    }
}

#[cfg(any(test, fuzzing))]
pub(crate) mod checks;
#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_finds_the_first_as_position_does() {
        let text: Vec<u8> = (0..200_u32).map(|i| (i * 37 % 251) as u8).collect();
        for len in 0..text.len() {
            let bytes = &text[..len];
            for byte in [b'\n', b' ', 0, 0x80, 0xff, 37, 74] {
                assert_eq!(
                    find_byte(byte, bytes),
                    bytes.iter().position(|&b| b == byte),
                    "{byte} in {len} bytes"
                );
            }
        }
        assert_eq!(find_byte(b'\n', b"\x0b\x0a"), Some(1));
        assert_eq!(find_byte(b'\n', b"\x8a\x0a\n"), Some(1));
    }

    #[test]
    fn numbers_read_as_str_parse_reads_them() {
        for text in [
            "0",
            "+5",
            "",
            "+",
            "-1",
            "12a",
            " 1",
            "007",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            let line = format!("{text}\n");
            let as_u32: Result<u32, _> = Lines {
                rest: line.as_bytes(),
            }
            .number("n");
            let as_u64: Result<u64, _> = Lines {
                rest: line.as_bytes(),
            }
            .number("n");
            assert_eq!(as_u32.ok(), text.parse::<u32>().ok(), "{text:?} as u32");
            assert_eq!(as_u64.ok(), text.parse::<u64>().ok(), "{text:?} as u64");
        }
    }

    fn versions() -> Vec<(String, String)> {
        vec![
            ("qc:v:model:songs".into(), "00ab".into()),
            ("qc:v:user: 1".into(), "ff01".into()),
        ]
    }

    fn stamps(created_at_ms: u64) -> Stamps {
        Stamps {
            created_at_ms,
            fresh_until_ms: Some(created_at_ms + 60_000),
            delta_us: 1_500,
        }
    }

    #[test]
    fn snapshot_lines_are_the_headers() {
        for timing in [None, Some(60_000)] {
            let stamps = Stamps {
                fresh_until_ms: timing,
                ..stamps(42)
            };
            let framed = frame(b"{}", BodyFormat::Json, &versions(), stamps, None);
            let (n, lines) = snapshot_lines(&framed).unwrap();
            let lines: Vec<(&[u8], &[u8])> = lines.collect();
            let header = header(&framed).unwrap();
            assert_eq!(n, header.versions.len());
            let expected: Vec<(&[u8], &[u8])> = header
                .versions
                .iter()
                .map(|(k, t)| (k.as_bytes(), t.as_bytes()))
                .collect();
            assert_eq!(lines, expected);
        }
        assert!(snapshot_lines(b"QC1\n0\n42\n0\n{}").is_err());
        assert!(
            snapshot_lines(b"QC2\n0\n42\n9\n").is_err(),
            "more than it holds"
        );
        let (n, lines) = snapshot_lines(b"QC2\n0\n42\n2\nk\nt\nk2\n{}").unwrap();
        assert_eq!(
            (n, lines.count()),
            (2, 1),
            "a truncated snapshot reads short"
        );
    }

    #[test]
    fn entries_without_a_timing_line_still_read() {
        let back = unframe(b"QC2\n0\n42\n0\n{}").unwrap();
        assert_eq!(back.stamps.fresh_until_ms, None);
        assert_eq!(&*back.body, b"{}");
    }

    #[test]
    fn round_trip_plain_and_compressed() {
        let body = serde_json::to_vec(&"x".repeat(5000)).unwrap();
        for threshold in [None, Some(1024), Some(1 << 20)] {
            let framed = frame(&body, BodyFormat::Json, &versions(), stamps(42), threshold);
            if threshold == Some(1024) {
                assert!(framed.len() < body.len() / 4, "compressed");
            }
            let back = unframe(&framed).unwrap();
            assert_eq!(back.stamps, stamps(42));
            assert_eq!(
                back.versions,
                vec![("qc:v:model:songs", "00ab"), ("qc:v:user: 1", "ff01")]
            );
            assert_eq!(&*back.body, &body[..]);
            assert_eq!(back.format, BodyFormat::Json);
        }
        let ron = frame(b"Some(None)", BodyFormat::Ron, &[], stamps(1), Some(0));
        assert_eq!(unframe(&ron).unwrap().format, BodyFormat::Ron);
    }

    /// Format version 1 wrote every body as JSON (`Some(None)` as `null`): its entries are
    /// refused, a miss the next computation overwrites.
    #[test]
    fn entries_of_format_version_1_are_refused() {
        for old in [&b"QC1\n0\n42\n0\nnull"[..], b"QC1\n2\n42\n99 1\n0\n\"x\""] {
            assert_eq!(
                unframe(old).err(),
                Some(DecodeError::Format { expected: "QC2" })
            );
            assert!(header(old).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let good = frame(b"{\"a\":1}", BodyFormat::Ron, &versions(), stamps(7), None);
        assert!(matches!(unframe(b"hello"), Err(DecodeError::Format { .. })));
        assert!(matches!(
            unframe(b"QC3\n0\n0\n0\n{}"),
            Err(DecodeError::Format { .. })
        ));
        assert!(unframe(b"QC2\n0\n0\n999999999\n").is_err());
        assert!(unframe(b"QC2\n1\n0\n0\nnot lz4").is_err());
        assert!(unframe(b"QC2\n8\n0\n0\n{}").is_err());
        assert!(unframe(b"QC2\n2\n0\nsoon 5\n0\n{}").is_err());
        assert!(unframe(b"QC2\n2\n0\n0\n{}").is_err(), "timing line missing");
        // Every truncation and every single-byte corruption of a good payload.
        for end in 0..good.len() {
            let _ = unframe(&good[..end]);
        }
        for i in 0..good.len() {
            for b in [0u8, b'\n', b'9', 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = unframe(&bad);
            }
        }
    }
}

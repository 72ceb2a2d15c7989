//! Cache keys: the [`Key`] newtype and the default key of a cached function.
//!
//! A cached function's default key is its path (`module::path::fn_name`) followed by a
//! 128-bit xxh3 hash of its arguments serialized as JSON (made injective where serde_json
//! is not: see `json`). The hash is stable across
//! processes, machines and releases of this crate (xxh3 is a fixed algorithm, JSON a fixed
//! encoding), which is what lets several app instances share entries through Redis.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::Error;

#[cfg(any(test, fuzzing))]
pub(crate) mod checks;
/// The text of simple arguments, written without serde_json.
mod fast;
pub(crate) mod json;
#[cfg(test)]
mod props;

/// The longest key accepted, in bytes. Keys are kept in memory and sent to Redis with
/// every command; anything longer is a mistake (hash the long part instead).
pub const MAX_KEY_LEN: usize = 4096;

/// A cache key: a non-empty string of at most [`MAX_KEY_LEN`] bytes without control
/// characters. Cheap to clone.
///
/// ```
/// use querycache::Key;
///
/// let key = Key::new("songs:popular:limit:10").unwrap();
/// assert_eq!(key.as_str(), "songs:popular:limit:10");
/// assert!(Key::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Arc<str>);

impl Key {
    /// Validates and wraps `key`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the key is empty, longer than [`MAX_KEY_LEN`] bytes, or
    /// contains a control character.
    pub fn new(key: impl AsRef<str>) -> Result<Self, Error> {
        let key = key.as_ref();
        validate_name("key", key, MAX_KEY_LEN)?;
        Ok(Key(Arc::from(key)))
    }

    /// Builds the default key of a cached function: `path` alone when `args` is the unit
    /// value `()`, otherwise `path:<32 hex digits>` where the digits are the xxh3-128 hash
    /// of `args` serialized as JSON.
    ///
    /// Distinct argument values give distinct text and so, but for a 2⁻¹²⁸ chance, distinct
    /// keys. The text is serde_json's, except where serde_json writes one `null` for
    /// distinct values: NaN, +∞ and −∞ are written `NaN`, `Infinity`, `-Infinity`, and a
    /// `Some` around a `None` or `()` as `?null`, so `f(None)`, `f(Some(f64::NAN))` and
    /// `f(Some(None))` do not share an entry. Two arguments that serialize alike are one
    /// value as far as the key goes (`#[serde(skip)]` fields, untagged enums).
    ///
    /// A `HashMap` or `HashSet` argument serializes in its iteration order, which differs
    /// between two equal sets: equal arguments may then get different keys (misses, never a
    /// wrong answer). Use `BTreeMap`/`BTreeSet`, or a sorted `Vec`, in cached arguments.
    ///
    /// ```
    /// use querycache::Key;
    ///
    /// let a = Key::for_args("app::songs::get_song", &(7,)).unwrap();
    /// let b = Key::for_args("app::songs::get_song", &(8,)).unwrap();
    /// assert_ne!(a, b);
    /// assert!(a.as_str().starts_with("app::songs::get_song:"));
    /// assert_eq!(Key::for_args("app::count", &()).unwrap().as_str(), "app::count");
    /// ```
    ///
    /// # Errors
    /// [`Error::Encode`] when an argument cannot be serialized to JSON (for example a map
    /// whose keys are not strings), [`Error::InvalidName`] when `path` is not a valid key.
    pub fn for_args<A: Serialize + ?Sized>(path: &str, args: &A) -> Result<Self, Error> {
        match args_hash(path, args)? {
            None => Key::new(path),
            Some(hash) => Key::from_args_hash(path, hash),
        }
    }

    /// The key `path:<hex of hash>` (see [`for_args`](Self::for_args)), from a hash
    /// [`args_hash`] computed earlier.
    pub(crate) fn from_args_hash(path: &str, hash: u128) -> Result<Self, Error> {
        // The hash part is 33 bytes of `:` and hex digits: only the path needs checking.
        validate_name("key", path, MAX_KEY_LEN - 33)?;
        Ok(with_args_key(path, hash, |text| Key(Arc::from(text))))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 128-bit xxh3 hash of `args` serialized as JSON, as [`Key::for_args`] puts it in the
/// key; `None` for the unit value. `path` names the function in an error.
pub(crate) fn args_hash<A: Serialize + ?Sized>(
    path: &str,
    args: &A,
) -> Result<Option<u128>, Error> {
    args_hash_named(|| path.to_owned(), args)
}

/// [`args_hash`], `path` written only for an error.
#[inline]
pub(crate) fn args_hash_named<A: Serialize + ?Sized>(
    path: impl FnOnce() -> String,
    args: &A,
) -> Result<Option<u128>, Error> {
    // The same text as the JSON way's, when the arguments are simple and short enough to
    // write without serde_json, on the stack (never `null`: the unit value is not among
    // them).
    let mut stack = fast::Buf::new();
    if fast::write(&mut stack, args) {
        return Ok(Some(xxhash_rust::xxh3::xxh3_128(stack.as_bytes())));
    }
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        // A re-entrant call (an argument whose Serialize impl builds a key) finds the
        // buffer borrowed; it then uses a buffer of its own.
        match buf.try_borrow_mut() {
            Ok(mut buf) => hash_args(path, args, &mut buf),
            Err(_) => hash_args(path, args, &mut Vec::new()),
        }
    })
}

/// Calls `f` with the text of the key `path:<hex of hash>`, written on the stack when it is
/// short enough (a hit then looks its key up without allocating).
pub(crate) fn with_args_key<R>(path: &str, hash: u128, f: impl FnOnce(&str) -> R) -> R {
    const STACK: usize = 256;
    let len = path.len() + 33;
    let mut stack = [0_u8; STACK];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= STACK {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let (head, tail) = buf.split_at_mut(path.len());
    head.copy_from_slice(path.as_bytes());
    tail[0] = b':';
    let mut hex = [0_u8; 32];
    tail[1..].copy_from_slice(hex128(&mut hex, hash));
    // `path` is a `str` and the rest ASCII, so the bytes are UTF-8; the fallback is not
    // reachable, and allocates rather than panics.
    match std::str::from_utf8(buf) {
        Ok(text) => f(text),
        Err(_) => f(&format!("{path}:{hash:032x}")),
    }
}

/// The seed of [`key_id`]: chosen per process (ids never leave it, and a seed an attacker
/// does not know keeps crafted keys from colliding on purpose).
fn id_seed() -> u64 {
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(rand::random);
    *SEED
}

/// The identity under which the memory store files the entry of `key`: a seeded 128-bit
/// hash of its text. A default key `path:<32 hex digits>` is hashed from its path's hash
/// and the 128 bits the digits spell ([`args_key_id`]), so that a hit finds its entry
/// without writing the key's text; any other text, whole. Only lower-case digits count as
/// that form (the form [`Key::for_args`] writes), so two texts never read as one.
pub(crate) fn key_id(key: &str) -> u128 {
    match split_args_key(key) {
        Some((path, hash)) => args_key_id(path, hash),
        None => xxhash_rust::xxh3::xxh3_128_with_seed(key.as_bytes(), id_seed()),
    }
}

/// [`key_id`] of the key `path:<hex of hash>`, without its text.
#[inline]
pub(crate) fn args_key_id(path: &str, hash: u128) -> u128 {
    args_key_id_of(path_id(path), hash)
}

/// The hash of a default key's path that [`args_key_id`] starts from. Another seed than
/// whole texts' ([`key_id`]): the two domains do not meet.
pub(crate) fn path_id(path: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(path.as_bytes(), id_seed() ^ 0x9e37_79b9_7f4a_7c15)
}

/// [`path_id`] of a function's path, `owner::fn` for a method (the `owner` type's name and
/// the last segment of `path`), remembered per thread: both are `&'static str`s, so their
/// addresses name them, and a hit does not hash the path again.
pub(crate) fn function_path_id(
    owner: Option<&'static str>,
    path: &'static str,
    text: impl FnOnce() -> std::borrow::Cow<'static, str>,
) -> u128 {
    const WAYS: usize = 16;
    type Slot = Option<((usize, usize), (usize, usize), u128)>;
    thread_local! {
        static IDS: [std::cell::Cell<Slot>; WAYS] =
            const { [const { std::cell::Cell::new(None) }; WAYS] };
    }
    let address = |s: &'static str| (s.as_ptr() as usize, s.len());
    let owner = owner.map_or((0, 0), address);
    let path_at = address(path);
    let way = ((path_at.0 >> 3) ^ (owner.0 >> 3)) % WAYS;
    IDS.with(|ids| {
        let slot = &ids[way];
        if let Some((o, p, id)) = slot.get()
            && o == owner
            && p == path_at
        {
            return id;
        }
        let id = path_id(&text());
        slot.set(Some((owner, path_at, id)));
        id
    })
}

/// [`args_key_id`] from the path's [`path_id`]: the path's id, a seeded hash nobody outside
/// the process knows, XOR the arguments' hash times an odd constant (a bijection). Two
/// keys of one path never share an id (their hashes differ); keys of two paths share one
/// only if their hashes differ by exactly what their paths' ids do, which is secret: the
/// same 2⁻¹²⁸ odds as [`key_id`]'s, at the cost of a multiplication instead of a hash.
#[inline]
pub(crate) fn args_key_id_of(path_id: u128, hash: u128) -> u128 {
    const ODD: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
    path_id ^ hash.wrapping_mul(ODD)
}

/// The key of a memory-tier hit: its text, or a default key's path and argument hash, whose
/// text is written only if something needs it (a sampled top-key count, a debug event).
#[derive(Clone, Copy)]
pub(crate) enum HitKey<'a> {
    Text(&'a str),
    /// A default key: its path's [`path_id`], the path itself (written only if needed) and
    /// the arguments' hash.
    Args {
        path_id: u128,
        path: &'a (dyn Fn() -> std::borrow::Cow<'static, str> + 'a),
        hash: u128,
    },
}

impl HitKey<'_> {
    /// The memory store's id of the key ([`key_id`]).
    #[inline]
    pub(crate) fn id(&self) -> u128 {
        match *self {
            HitKey::Text(text) => key_id(text),
            HitKey::Args { path_id, hash, .. } => args_key_id_of(path_id, hash),
        }
    }

    /// What `f` makes of the key's text.
    pub(crate) fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match *self {
            HitKey::Text(text) => f(text),
            HitKey::Args { path, hash, .. } => with_args_key(&path(), hash, f),
        }
    }
}

/// `path` and the hash of a key of the form `path:<32 lower-case hex digits>`.
fn split_args_key(key: &str) -> Option<(&str, u128)> {
    let split = key.len().checked_sub(33)?;
    let (path, tail) = (key.get(..split)?, key.as_bytes().get(split..)?);
    let (&colon, digits) = tail.split_first()?;
    if colon != b':' || path.is_empty() {
        return None;
    }
    let mut hash = 0_u128;
    for &digit in digits {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        hash = (hash << 4) | u128::from(value);
    }
    Some((path, hash))
}

/// Serializes `args` into `buf` (serde_json's text, made injective: see [`json`]) and
/// hashes them; `None` for the unit value.
fn hash_args<A: Serialize + ?Sized>(
    path: impl FnOnce() -> String,
    args: &A,
    buf: &mut Vec<u8>,
) -> Result<Option<u128>, Error> {
    buf.clear();
    json::write(buf, args).map_err(|source| Error::Encode {
        key: path(),
        source,
    })?;
    if buf.as_slice() == b"null" {
        return Ok(None);
    }
    Ok(Some(xxhash_rust::xxh3::xxh3_128(buf)))
}

/// `value` as 32 lower-case hex digits, written into `out`.
fn hex128(out: &mut [u8; 32], value: u128) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        let byte = (value >> ((15 - i) * 8)) as u8;
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

/// Whether `value` holds a control character (`char::is_control`: C0, DEL and C1), read
/// byte-wise: C0 and DEL are single bytes, C1 is `0xC2 0x80..=0x9F` in UTF-8.
fn has_control(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
        || bytes
            .windows(2)
            .any(|pair| pair[0] == 0xc2 && (0x80..=0x9f).contains(&pair[1]))
}

/// Shared validation of keys, tags and namespaces.
pub(crate) fn validate_name(what: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid_name(what, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid_name(
            what,
            value,
            format!("is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    if has_control(value) {
        return Err(Error::invalid_name(
            what,
            value,
            "contains a control character",
        ));
    }
    Ok(())
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The most of a key (or pattern) a log line quotes: a request path can make a key of
/// several kilobytes, and logs are not the place for it.
pub(crate) const LOGGED_KEY_LEN: usize = 200;

/// `text` as a log line shows it: whole up to [`LOGGED_KEY_LEN`] bytes, else its start and
/// how long it was.
pub(crate) fn shown<S: AsRef<str> + ?Sized>(text: &S) -> Shown<'_> {
    Shown(text.as_ref())
}

/// See [`shown`].
pub(crate) struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= LOGGED_KEY_LEN {
            return f.write_str(self.0);
        }
        let mut end = LOGGED_KEY_LEN;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}… ({} bytes)", &self.0[..end], self.0.len())
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Key::new(value)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Key::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_args_key_has_one_id_from_its_text_or_from_its_parts() {
        let hash = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        let key = Key::from_args_hash("app::songs::get", hash).unwrap();
        assert_eq!(key_id(key.as_str()), args_key_id("app::songs::get", hash));
        assert_ne!(
            args_key_id("app::songs::get", hash),
            args_key_id("app::songs::get", hash + 1)
        );
        assert_ne!(
            args_key_id("app::songs::get", hash),
            args_key_id("app::songs::got", hash)
        );
        // Upper-case digits are another text, not the same key: hashed whole.
        let upper = format!("app::songs::get:{hash:032X}");
        assert_eq!(split_args_key(&upper), None);
        assert_ne!(key_id(&upper), key_id(key.as_str()));
        for text in [
            "",
            ":",
            "x",
            "p:0123",
            &format!(":{hash:032x}"),
            &format!("p;{hash:032x}"),
        ] {
            assert_eq!(split_args_key(text), None, "{text:?}");
        }
        assert_eq!(split_args_key(&format!("p:{hash:032x}")), Some(("p", hash)));
    }

    #[test]
    fn control_characters_are_found_byte_wise_as_char_is_control_finds_them() {
        for text in [
            "plain",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}next",
            "c1 end\u{9f}",
            "latin é ü",
            "\u{a0}nbsp",
            "\u{c2}\u{80}",
            "emoji 🎵",
            "\u{80}",
            "\u{a0}\u{9f}",
        ] {
            assert_eq!(
                has_control(text),
                text.chars().any(char::is_control),
                "{text:?}"
            );
        }
    }

    #[test]
    fn argument_keys_are_the_path_and_32_hex_digits() {
        let key = Key::for_args("app::songs::get", &(7_u32, "x")).unwrap();
        let hash = xxhash_rust::xxh3::xxh3_128(br#"[7,"x"]"#);
        assert_eq!(key.as_str(), format!("app::songs::get:{hash:032x}"));
        assert!(Key::for_args("bad\npath", &(1,)).is_err());
        assert!(
            Key::for_args(&"p".repeat(MAX_KEY_LEN - 32), &(1,)).is_err(),
            "too long"
        );
    }

    #[test]
    fn distinct_arguments_give_distinct_keys() {
        let keys = [
            Key::for_args("f", &(1, "a")).unwrap(),
            Key::for_args("f", &(1, "b")).unwrap(),
            Key::for_args("f", &(2, "a")).unwrap(),
            Key::for_args("f", &("1", "a")).unwrap(),
            Key::for_args("g", &(1, "a")).unwrap(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn key_is_stable() {
        // Pinned: a change here breaks keys shared through Redis across releases.
        let key = Key::for_args("app::get_song", &(7,)).unwrap();
        assert_eq!(key.as_str().len(), "app::get_song:".len() + 32);
        assert_eq!(key, Key::for_args("app::get_song", &(7,)).unwrap());
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(Key::new("").is_err());
        assert!(Key::new("a\nb").is_err());
        assert!(Key::new("x".repeat(MAX_KEY_LEN + 1)).is_err());
        assert_eq!(shown("short").to_string(), "short");
        let long = "é".repeat(3000);
        let logged = shown(&long).to_string();
        assert!(logged.len() < LOGGED_KEY_LEN + 32, "{logged}");
        assert!(logged.ends_with("(6000 bytes)"), "{logged}");
        assert!(Key::new("x".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn unserializable_arguments_are_an_error() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3);
        let err = Key::for_args("f", &(map,)).unwrap_err();
        assert!(err.to_string().contains("\"f\""), "{err}");
    }
}

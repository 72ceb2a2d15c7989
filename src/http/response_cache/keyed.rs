//! The keyed part of a cached answer's key: an HMAC-SHA256, under the key secret
//! (`CACHE_KEY_SECRET`), of the request's `Authorization` header and `Vary` values.
//!
//! **Why keyed.** An entry's key is seen in places the requester's credentials must not be
//! recoverable from: the store, log lines, the admin analytics. Hashed with a fast unkeyed
//! hash, a key let anyone who saw it test candidate passwords offline — 141 guesses took
//! 1.2 ms to recover a Basic-auth password. Under a secret the instances share, the hash is
//! a MAC: without the secret, a guess cannot be checked against it.
//!
//! **Why HMAC-SHA256.** A standard MAC (RFC 2104) with no known weakness as a PRF, from
//! RustCrypto's `hmac` and `sha2` (pure Rust, no optional features, no build script); `sha2`
//! already digests the admin token. It costs about a microsecond, paid only by requests
//! carrying those headers. BLAKE3's keyed mode would be faster, but would add a crate with
//! its own SIMD build for one hash per request; a password hash (Argon2) would be slower by
//! design, which a cache key on the request path cannot afford — the secret, not the cost,
//! is what stops the guessing.
//!
//! **What is keyed.** The `Authorization` header and every `Vary` header's values: what a
//! request carries about its user (credentials, cookies, languages). The path and the query
//! string stay as they were: the path is the readable part of the key (`<namespace>:<path>:
//! <hash>`, what pattern invalidation matches), and a request without credentials or `Vary`
//! values gets the same key on every instance, secret or not — such answers are shared even
//! when the instances have no common secret. Who may read keys at all is the management
//! router's business: its public analytics view redacts them.
//!
//! **Without a secret** each process draws a random one, the first time a layer is built:
//! keys stay unguessable, but instances sharing Redis then disagree on the key of every
//! request with credentials or `Vary` values, and share no such entry. A Redis-backed cache
//! says so once, at warn level.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{CacheConfig, Error, config::StoreKind};

type HmacSha256 = Hmac<Sha256>;

/// Separates this MAC's inputs from any other use of the same secret.
const CONTEXT: &[u8] = b"querycache:http-entry-key:v1\0";

/// The MAC of one layer, set up with the secret (cloned per request: the key schedule is
/// not redone).
#[derive(Clone)]
pub(super) struct KeyedHash {
    mac: HmacSha256,
}

impl KeyedHash {
    /// The MAC under `config`'s key secret, or under this process's random one (warning
    /// once when the store is Redis-backed, where that stops instances from sharing).
    ///
    /// # Errors
    /// [`Error::Config`] naming `CACHE_KEY_SECRET` if HMAC refuses the key (it takes keys
    /// of any length: not expected).
    pub(super) fn new(config: &CacheConfig) -> Result<Self, Error> {
        let secret = match config.key_secret() {
            Some(secret) => secret,
            None => {
                warn_not_shared(config.store_kind());
                process_secret()
            }
        };
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| {
            Error::config("CACHE_KEY_SECRET", "<redacted>", "not a usable HMAC key")
        })?;
        Ok(KeyedHash { mac })
    }

    /// The MAC, in hex, of the values of `names` in `headers` (every value of each name, in
    /// order, length-prefixed: no two different sets of values give the same input); `None`
    /// when the request carries none of them.
    pub(super) fn digest(&self, headers: &HeaderMap, names: &[HeaderName]) -> Option<String> {
        if !names.iter().any(|name| headers.contains_key(name)) {
            return None;
        }
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        for name in names {
            let values = headers.get_all(name);
            mac.update(&(values.iter().count() as u64).to_le_bytes());
            for value in values {
                mac.update(&(value.len() as u64).to_le_bytes());
                mac.update(value.as_bytes());
            }
        }
        let tag = mac.finalize().into_bytes();
        Some(tag.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

/// This process's random secret, drawn once (from the thread's CSPRNG, seeded by the OS).
fn process_secret() -> &'static [u8] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(rand::random)
}

/// Warns, once per process, that Redis-backed instances without a common secret share no
/// entry of a request with credentials or `Vary` values.
fn warn_not_shared(store: StoreKind) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if store != StoreKind::Memory && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %store,
            "CACHE_KEY_SECRET is not set: cached HTTP answers of requests carrying Authorization \
             or Vary values are keyed with a random secret of this process, so instances sharing \
             Redis will not share them; set the same CACHE_KEY_SECRET (e.g. `openssl rand -hex 32`) \
             on every instance"
        );
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn keyed(secret: &str) -> KeyedHash {
        let config = CacheConfig::builder().key_secret(secret).build().unwrap();
        KeyedHash::new(&config).unwrap()
    }

    #[test]
    fn the_digest_depends_on_the_secret_and_on_every_value() {
        let names = [header::ACCEPT_LANGUAGE, header::AUTHORIZATION];
        let mut headers = HeaderMap::new();
        assert_eq!(keyed("secret-a-0123456789").digest(&headers, &names), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        let a = keyed("secret-a-0123456789")
            .digest(&headers, &names)
            .unwrap();
        let b = keyed("secret-b-0123456789")
            .digest(&headers, &names)
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            Some(a.clone()),
            keyed("secret-a-0123456789").digest(&headers, &names)
        );
        // A value moved from one header to the next is another input.
        let mut moved = HeaderMap::new();
        moved.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_ne!(Some(a), keyed("secret-a-0123456789").digest(&moved, &names));
    }
}

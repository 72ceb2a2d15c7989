//! The key secret (`CACHE_KEY_SECRET`): what keys the hash of the credentials and `Vary`
//! values in the keys of cached HTTP answers.
//!
//! Those keys show up where a client's own inputs should not be recoverable from them: the
//! store, the logs, the admin analytics. Hashed without a secret, an `Authorization: Basic`
//! header is one cheap offline guess per candidate password away; keyed with a secret the
//! instances share, the hash says nothing to whoever lacks the secret. Instances that share
//! a Redis store must share the secret too, or they key the same request differently (and
//! share no entry for requests that carry credentials or `Vary` values).
//!
//! The secret is kept as bytes, never printed: `Debug` shows `<redacted>`, and an error
//! about it names the variable, not the value.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// The environment variable holding the secret.
pub(crate) const VARIABLE: &str = "CACHE_KEY_SECRET";

/// The shortest key secret accepted (`CACHE_KEY_SECRET`,
/// [`CacheConfigBuilder::key_secret`](crate::config::CacheConfigBuilder::key_secret)), in bytes:
/// shorter ones are guessable, and refused.
///
/// ```
/// use querycache::{CacheConfig, config::MIN_KEY_SECRET_LEN};
///
/// let short = "x".repeat(MIN_KEY_SECRET_LEN - 1);
/// let err = CacheConfig::from_vars([("CACHE_KEY_SECRET", short)]).unwrap_err();
/// assert!(err.to_string().contains("CACHE_KEY_SECRET"));
/// ```
pub const MIN_KEY_SECRET_LEN: usize = 16;

/// A configured key secret. Cheap to clone; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct KeySecret(Arc<[u8]>);

impl KeySecret {
    /// `secret`, if it is at least [`MIN_KEY_SECRET_LEN`] bytes long.
    ///
    /// # Errors
    /// [`Error::Config`] naming `CACHE_KEY_SECRET` (the value redacted) otherwise.
    pub(crate) fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_KEY_SECRET_LEN {
            return Err(Error::config(
                VARIABLE,
                "<redacted>",
                format!(
                    "the secret is {} bytes long: use at least {MIN_KEY_SECRET_LEN} random bytes \
                     (for example `openssl rand -hex 32`), the same on every instance",
                    secret.len()
                ),
            ));
        }
        Ok(KeySecret(Arc::from(secret)))
    }

    /// The secret's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_without_being_shown() {
        let err = KeySecret::new(b"fifteen-bytes!!").unwrap_err().to_string();
        assert!(err.contains(VARIABLE) && err.contains("15 bytes"), "{err}");
        assert!(!err.contains("fifteen"), "{err}");
        let secret = KeySecret::new(b"sixteen-bytes!!!").unwrap();
        assert_eq!(secret.bytes(), b"sixteen-bytes!!!");
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }
}

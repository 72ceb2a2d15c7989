//! TLS through rustls, for the Redis store (`rediss://`) and the PostgreSQL change feed
//! (`sslmode=require` and up).

/// Makes sure rustls has a process-wide crypto provider before a TLS connection asks for
/// one. rustls panics at the first handshake when none is installed and its crate features
/// do not name exactly one (both `ring` and `aws-lc-rs` compiled in, or neither), so this
/// runs when a TLS URL is configured, before any connection:
///
/// * an application that installed its own provider
///   (`rustls::crypto::CryptoProvider::install_default`) keeps it;
/// * otherwise the provider querycache's features select is installed: aws-lc-rs with
///   `rustls-aws-lc-rs`, ring with `rustls-ring` (which `feed-postgres` turns on);
/// * otherwise the answer is the reason, for the caller's configuration error: nothing is
///   installed behind the application's back, and nothing panics later.
pub(crate) fn ensure_crypto_provider() -> Result<(), String> {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return Ok(());
    }
    // Another thread may install one between the check and here: either is fine.
    #[cfg(feature = "rustls-aws-lc-rs")]
    {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Ok(())
    }
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc-rs")))]
    {
        // rustls 0.23.48 deprecates ring's provider (no post-quantum key exchange) and
        // offers no other: the application chose ring with `rustls-ring`, and
        // `rustls-aws-lc-rs` is the way to post-quantum key exchange (README, features).
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let _ = provider.install_default();
        Ok(())
    }
    #[cfg(not(any(feature = "rustls-ring", feature = "rustls-aws-lc-rs")))]
    {
        Err(
            "TLS needs a rustls crypto provider and none is installed: call \
             `rustls::crypto::aws_lc_rs::default_provider().install_default()` (or ring's) at \
             start-up, or enable querycache's `rustls-aws-lc-rs` or `rustls-ring` feature"
                .to_owned(),
        )
    }
}

//! TLS through rustls, for the Redis store (`rediss://`) and the PostgreSQL change feed
//! (`sslmode=require` and up).

/// Makes sure rustls has a process-wide crypto provider before a TLS connection asks for
/// one: when the application's dependency graph compiles in both of rustls's
/// providers (`ring` and `aws-lc-rs`: pgwire-replication and others turn the second on),
/// rustls cannot choose and panics at the first TLS handshake. An application that
/// installed its own provider keeps it; otherwise querycache's (`ring`) is installed.
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one between the check and here: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

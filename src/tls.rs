//! The process-wide TLS set-up: one rustls crypto provider, ring, for every TLS connection
//! (NATS, and HTTPS deliveries through reqwest).
//!
//! async-nats 0.51 uses ring, while reqwest 0.13 would default to aws-lc-rs; with both
//! providers compiled in, or none installed, rustls cannot pick one and panics at the first
//! handshake ("Could not automatically determine the process-level CryptoProvider"). So
//! Cargo.toml builds reqwest without a provider (`rustls-no-provider`) and rustls with ring
//! only, and every entry point that may open a TLS connection calls [`install_provider`] first.

/// Installs ring as the process-wide rustls provider. Idempotent: a provider already installed
/// (by an earlier call or by an embedder) is kept.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

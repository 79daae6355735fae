//! TLS for `https://` and `wss://` on the listen port, with rustls.
//!
//! When `--tls-cert` and `--tls-key` are given, every connection on the
//! port is TLS: pages, metrics and game sessions alike. Only the handshake
//! lives here; what runs over the encrypted stream is the same HTTP and
//! WebSocket code as over plain TCP. Not for certificate management: the
//! files are read once at start (restart to rotate them).

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

fn invalid(what: &str, path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} {}: {e}", path.display()),
    )
}

/// Builds the acceptor from PEM files: a certificate chain (leaf first) and
/// its private key (PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> io::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid("cannot read the certificate", cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("bad certificate PEM in", cert, e))?;
    if chain.is_empty() {
        return Err(invalid("no certificate in", cert, "empty PEM"));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| invalid("cannot read the private key", key, e))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| invalid("certificate and key do not fit:", cert, e))?;
    // Browsers open WebSockets over HTTP/1.1; say so in ALPN.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

//! mTLS from the configured PEM files (rustls via tonic). Off unless `tls.cert_file`,
//! `tls.key_file` and `tls.ca_file` are all set; then servers require a client certificate signed
//! by the CA, and clients present theirs and verify servers against the same CA.

use std::path::Path;

use ironmesh_interceptors::client::ClientTls;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// A TLS file that could not be read (the path is named; the contents never are).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct TlsError {
    path: String,
    #[source]
    source: std::io::Error,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError {
        path: path.display().to_string(),
        source,
    })
}

/// The server side, or `None` for plaintext.
pub fn server_config(tls: &TlsConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (Some(cert), Some(key), Some(ca)) = (&tls.cert_file, &tls.key_file, &tls.ca_file) else {
        return Ok(None);
    };
    Ok(Some(
        ServerTlsConfig::new()
            .identity(Identity::from_pem(read(cert)?, read(key)?))
            .client_ca_root(Certificate::from_pem(read(ca)?)),
    ))
}

/// The client side, or `None` for plaintext.
pub fn client_config(tls: &TlsConfig) -> Result<Option<ClientTls>, TlsError> {
    let (Some(cert), Some(key), Some(ca)) = (&tls.cert_file, &tls.key_file, &tls.ca_file) else {
        return Ok(None);
    };
    Ok(Some(ClientTls {
        ca_pem: read(ca)?,
        identity: Some((read(cert)?, read(key)?)),
        domain: None,
    }))
}

//! The TLS side of the listener: the server's certificate (with the setting CA in its chain),
//! client certificates requested and verified against the setting CA, and the peer each
//! request came from.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::ServeError;
use crate::admin::DataDir;

/// The peer of a connection, attached to every request on it.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    /// `sha256:<hex>` of the verified client certificate, when one was presented.
    pub(crate) cert: Option<String>,
    /// The verified client certificate's issuer name (DER): which setting's CA issued it.
    pub(crate) issuer: Option<Arc<[u8]>>,
    /// The server name the client asked for (TLS SNI), lower case.
    pub(crate) sni: Option<String>,
}

/// Builds the rustls server configuration: our certificate, client certificates requested
/// and verified against the setting CA when presented.
pub(crate) fn tls_config(data: &DataDir) -> Result<rustls::ServerConfig, ServeError> {
    let tls = |e: &dyn std::fmt::Display| ServeError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_der = CertificateDer::from_pem_slice(data.read(&data.ca_cert())?.as_bytes())
        .map_err(|e| tls(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.clone()).map_err(|e| tls(&e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(&e))?;
    let mut chain = CertificateDer::pem_slice_iter(data.read(&data.server_cert())?.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    // The setting CA goes out with the server certificate: a device enrolling holds only the
    // CA's fingerprint, and must find that CA in the chain to pin it.
    chain.push(ca_der);
    let key = PrivateKeyDer::from_pem_slice(data.read(&data.server_key())?.as_bytes())
        .map_err(|e| tls(&e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

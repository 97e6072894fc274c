//! Before enrolling: which setting a server belongs to and whether its CA matches the
//! fingerprint the manager showed, so the enrolment screen can say "Acorn Pre-School ✓" (or
//! warn of a foreign CA) before the one-time code is spent. Reads the chain the server
//! presents in the TLS handshake and sends nothing.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;

use crate::enrol::runtime;
use crate::error::Result;
use crate::net::{self, PinnedCaVerifier, ServerAddr};

/// What the server presented, checked against the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolPreview {
    /// The setting's name, from its CA certificate; only when the fingerprint matches.
    pub setting_name: Option<String>,
    /// `sha256:<hex>` of the CA certificate the server presented, if it presented one.
    pub presented_fingerprint: Option<String>,
    /// The server's certificate chains to a CA with exactly the given fingerprint.
    pub matches: bool,
}

#[derive(Debug)]
struct Recorder {
    pinned: PinnedCaVerifier,
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, bool)>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let matches = self
            .pinned
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .is_ok();
        let chain = intermediates
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((chain, matches));
        }
        // Nothing secret is sent on this connection; it is closed right after the handshake.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.pinned.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.pinned.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.pinned.supported_verify_schemes()
    }
}

/// Connects to `server_url`, reads the certificate chain it presents and checks it against
/// `ca_fingerprint`.
///
/// # Errors
/// [`crate::DeviceError::InvalidInput`] for a malformed address or fingerprint;
/// [`crate::DeviceError::Network`] when the server cannot be reached.
pub fn preview_enrolment(server_url: &str, ca_fingerprint: &str) -> Result<EnrolPreview> {
    let addr = ServerAddr::parse(server_url)?;
    let pin = net::parse_fingerprint(ca_fingerprint)?;
    let recorder = Arc::new(Recorder {
        pinned: PinnedCaVerifier::new(pin),
        seen: Mutex::new(None),
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(net::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::DeviceError::Protocol(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let rt = runtime(&addr)?;
    let tls = rt.block_on(net::connect(&addr, Arc::new(cfg), None))?;
    drop(tls);
    let seen = recorder.seen.lock().ok().and_then(|mut s| s.take());
    let Some((chain, matches)) = seen else {
        return Ok(EnrolPreview {
            setting_name: None,
            presented_fingerprint: None,
            matches: false,
        });
    };
    // The pinned CA when it matched; otherwise the last certificate presented (the CA, when the
    // server sends [leaf, CA]).
    let ca = chain
        .iter()
        .find(|c| sha2::Sha256::digest(c.as_ref()).as_slice() == pin)
        .or_else(|| chain.last());
    let presented_fingerprint = ca.map(|c| net::fingerprint(c.as_ref()));
    let setting_name = if matches {
        ca.and_then(|c| setting_name_of(c.as_ref()))
    } else {
        None
    };
    Ok(EnrolPreview {
        setting_name,
        presented_fingerprint,
        matches,
    })
}

/// The setting's name from its CA certificate's common name (`Sprig setting CA: <name>`).
fn setting_name_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(
        cn.strip_prefix("Sprig setting CA: ")
            .unwrap_or(cn)
            .to_owned(),
    )
}

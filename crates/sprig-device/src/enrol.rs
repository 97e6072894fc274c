//! Enrolment: a fresh ECDSA P-256 key pair, a CSR and the one-time code, sent over TLS that
//! trusts only the CA whose fingerprint the manager showed; the issued certificate, the key
//! and the CA are then kept inside the encrypted store.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sprig_store::DeviceIdentity;
use zeroize::Zeroizing;

use crate::device::{Device, now};
use crate::error::{DeviceError, Result};
use crate::net::{self, ServerAddr};

/// What a manager's enrolment screen (or QR code) gives the device.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// `https://host:port` of the setting's server.
    pub server_url: String,
    /// The one-time enrolment code.
    pub code: String,
    /// `sha256:<hex>` of the setting CA certificate.
    pub ca_fingerprint: String,
    /// A name for this device in the register.
    pub device_name: String,
}

/// The code is a secret until used: it never reaches logs.
impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("server_url", &self.server_url)
            .field("code", &"<redacted>")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .field("device_name", &self.device_name)
            .finish()
    }
}

/// The result of enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The device id the server issued.
    pub device_id: String,
}

pub(crate) fn runtime(addr: &ServerAddr) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| addr.network_error(e))
}

impl Device {
    /// Enrols the device in `path` with the server: makes a key pair, sends a CSR with the
    /// code over TLS pinned to `ca_fingerprint`, and stores the issued certificate, the key, the
    /// CA and the server address in the encrypted store (created if needed). A pin mismatch or
    /// a refused code stores nothing.
    ///
    /// # Errors
    /// [`DeviceError::AlreadyEnrolled`], [`DeviceError::CaMismatch`], [`DeviceError::Server`]
    /// (`enrol_code_invalid`, `enrol_code_expired`, `enrol_code_used`, `enrol_throttled`…),
    /// [`DeviceError::Network`], store failures.
    pub fn enrol(path: impl AsRef<Path>, e: &Enrolment) -> Result<Enrolled> {
        let addr = ServerAddr::parse(&e.server_url)?;
        let pin = net::parse_fingerprint(&e.ca_fingerprint)?;
        let pinned = net::fingerprint_of_pin(&pin);
        if e.code.trim().is_empty() {
            return Err(DeviceError::InvalidInput(
                "enter the enrolment code shown on the manager's screen".into(),
            ));
        }
        match Self::open(path.as_ref()) {
            Ok(d) => {
                if let Some(id) = d.store.device_identity()? {
                    return Err(DeviceError::AlreadyEnrolled {
                        device_id: id.device_id,
                    });
                }
            }
            // A wiped device comes back only this way: with a fresh code.
            Err(
                DeviceError::NotSetUp { .. }
                | DeviceError::Wiped { .. }
                | DeviceError::SelfWiped { .. },
            ) => {}
            Err(other) => return Err(other),
        }

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| DeviceError::Protocol(format!("cannot make a key pair: {e}")))?;
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .and_then(|p| p.serialize_request(&key))
            .and_then(|r| r.pem())
            .map_err(|e| {
                DeviceError::Protocol(format!("cannot make a certificate request: {e}"))
            })?;
        let body = serde_json::json!({
            "code": e.code.trim(),
            "device_name": e.device_name,
            "csr_pem": csr,
            "app_version": env!("CARGO_PKG_VERSION"),
        });
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());

        let rt = runtime(&addr)?;
        let headers = [("content-type", "application/json".to_owned())];
        let exchange = net::request_full(
            &addr,
            net::enrol_config(pin)?,
            Some(&pinned),
            "POST",
            "/v1/enrol",
            &headers,
            body.to_vec(),
        );
        let reply = rt
            .block_on(async { tokio::time::timeout(net::IDLE_TIMEOUT, exchange).await })
            .map_err(|_| addr.network_error("the server did not answer the enrolment"))??;
        if reply.status != 200 {
            return Err(reply.error());
        }
        let v = reply.json()?;
        let field = |name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| DeviceError::Protocol(format!("the enrolment answer has no {name}")))
        };
        let device_id = field("device_id")?;
        let certificate_pem = field("certificate_pem")?;
        let ca_pem = field("ca_pem")?;
        // The CA we will trust from now on must be the one we pinned.
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|_| DeviceError::Protocol("the CA certificate is not PEM".into()))?;
        if net::fingerprint(&ca_der) != pinned {
            return Err(DeviceError::CaMismatch { expected: pinned });
        }
        CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|_| DeviceError::Protocol("the issued certificate is not PEM".into()))?;

        let mut device = Self::open_or_create(path)?;
        device.store.set_device_identity(&DeviceIdentity {
            device_id: device_id.clone(),
            server_url: addr.url.clone(),
            ca_cert_pem: ca_pem,
            client_cert_pem: certificate_pem,
            client_key_pem: Zeroizing::new(key.serialize_pem()),
            enrolled_at: now().0,
        })?;
        device.dir.clear_wiped_marker();
        Ok(Enrolled { device_id })
    }
}

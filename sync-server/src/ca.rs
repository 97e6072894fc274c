//! The setting's certificate authority: made at `init`, it signs the server certificate and
//! each enrolled device's client certificate (ECDSA P-256, rcgen).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::SigningKey as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use sprig_proto::Lease;
use time::{Duration, OffsetDateTime};

/// How long a device certificate is valid.
const DEVICE_CERT_DAYS: i64 = 5 * 365;

/// Certificate work failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The certificate signing request could not be parsed or its signature is wrong.
    #[error("the certificate signing request is not valid ({0}); the device must make a new one")]
    BadCsr(String),
    /// Generating or signing failed, or the stored CA is unreadable.
    #[error("certificate operation failed: {0}")]
    Crypto(#[from] rcgen::Error),
}

/// `sha256:<hex>` of a certificate's DER bytes: the form used to pin the CA and to map a
/// client certificate to a device.
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    // Positive, non-zero leading byte: a canonical DER INTEGER of fixed length.
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&b)
}

/// A newly made CA and server certificate, as PEM.
#[derive(Clone)]
pub struct NewPki {
    /// The CA certificate.
    pub ca_cert_pem: String,
    /// The CA private key (PKCS#8).
    pub ca_key_pem: String,
    /// The server certificate.
    pub server_cert_pem: String,
    /// The server private key.
    pub server_key_pem: String,
    /// [`fingerprint`] of the CA certificate.
    pub ca_fingerprint: String,
}

impl std::fmt::Debug for NewPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPki")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish_non_exhaustive()
    }
}

/// Makes the setting CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and
/// `hostname`.
///
/// # Errors
/// [`CaError::Crypto`].
pub fn make_pki(setting_name: &str, hostname: Option<&str>) -> Result<NewPki, CaError> {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("Sprig setting CA: {setting_name}"),
    );
    dn.push(DnType::OrganizationName, "Sprig");
    // Settings often share names: a unique DN keeps another setting's certificates from
    // even naming this CA as their issuer, so they fail as "unknown CA", not as a bad
    // signature.
    dn.push(
        DnType::OrganizationalUnitName,
        uuid::Uuid::new_v4().hyphenated().to_string(),
    );
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + Duration::days(20 * 365);
    ca.serial_number = Some(random_serial());
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut names = vec!["localhost".to_owned()];
    if let Some(h) = hostname.filter(|h| !h.is_empty() && *h != "localhost") {
        names.push(h.to_owned());
    }
    let mut sp = CertificateParams::new(Vec::<String>::new())?;
    for n in &names {
        match n.parse::<IpAddr>() {
            Ok(ip) => sp.subject_alt_names.push(SanType::IpAddress(ip)),
            Err(_) => sp
                .subject_alt_names
                .push(SanType::DnsName(n.clone().try_into()?)),
        }
    }
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !sp.subject_alt_names.contains(&SanType::IpAddress(ip)) {
            sp.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.last().cloned().unwrap_or_default(),
    );
    sp.distinguished_name = dn;
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.not_before = now - Duration::hours(1);
    sp.not_after = now + Duration::days(5 * 365);
    sp.serial_number = Some(random_serial());
    sp.use_authority_key_identifier_extension = true;
    let server_cert = sp.signed_by(&server_key, &issuer)?;

    Ok(NewPki {
        ca_fingerprint: fingerprint(ca_cert.der()),
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    })
}

/// The loaded CA, able to sign device certificates and offline leases.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The same key again, for signing leases (the issuer keeps its own).
    key: KeyPair,
    cert_pem: String,
    fingerprint: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// A certificate issued to a device.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub pem: String,
    /// [`fingerprint`] of its DER.
    pub fingerprint: String,
    /// Its serial number, hex.
    pub serial: String,
}

impl Ca {
    /// Loads the CA from its certificate and key PEM.
    ///
    /// # Errors
    /// [`CaError::Crypto`] when either does not parse.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CaError> {
        let issuer = Issuer::from_ca_cert_pem(cert_pem, KeyPair::from_pem(key_pem)?)?;
        let key = KeyPair::from_pem(key_pem)?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| CaError::Crypto(rcgen::Error::CouldNotParseCertificate))?;
        Ok(Ca {
            issuer,
            key,
            cert_pem: cert_pem.to_owned(),
            fingerprint: fingerprint(&der),
        })
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `sha256:<hex>` of the CA certificate.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Signs an offline lease with the CA key: ECDSA P-256 with SHA-256 over
    /// [`Lease::signed_bytes`], the signature in ASN.1 DER form. The device verifies it with
    /// the public key of the CA certificate it pinned at enrolment.
    ///
    /// # Errors
    /// [`CaError::Crypto`] when signing fails.
    pub fn sign_lease(&self, mut lease: Lease) -> Result<Lease, CaError> {
        lease.signature = self.key.sign(&lease.signed_bytes())?;
        Ok(lease)
    }

    /// Issues a client certificate for `device_id` over the CSR's public key: subject CN =
    /// device id, SAN URI `urn:sprig:device:<id>`, client-auth EKU, valid 5 years. Nothing
    /// else from the CSR is used.
    ///
    /// # Errors
    /// [`CaError::BadCsr`] for a CSR that does not parse or verify.
    pub fn issue_device_cert(&self, csr_pem: &str, device_id: &str) -> Result<IssuedCert, CaError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::BadCsr(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, device_id);
        p.distinguished_name = dn;
        p.subject_alt_names = vec![SanType::URI(
            format!("urn:sprig:device:{device_id}").try_into()?,
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(DEVICE_CERT_DAYS);
        let serial = random_serial();
        p.serial_number = Some(serial.clone());
        p.use_authority_key_identifier_extension = true;
        csr.params = p;
        let cert = csr.signed_by(&self.issuer)?;
        Ok(IssuedCert {
            fingerprint: fingerprint(cert.der()),
            pem: cert.pem(),
            serial: hex::encode(serial.to_bytes()),
        })
    }
}

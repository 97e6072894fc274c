//! Serving every setting of a hosted deployment's database from one listener
//! ([`serve_hosted`](super::serve_hosted)): a setting's server certificate is chosen by the
//! TLS server name (SNI) the device or browser sent, a client certificate is verified against
//! the CA that issued it (found by the certificate's issuer name, unique per setting), and a
//! device request is routed to the setting of that CA; a request without a client certificate
//! (enrolment) to the setting of its host name. New settings are picked up within
//! [`REFRESH`] without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use uuid::Uuid;

use super::{AppState, Peer, ServeConfig, ServeError, changes};
use crate::ca::Ca;
use crate::media_store::MediaRoot;
use crate::store::{PgPool, ServerStore, SettingTls};

/// How often the settings table is read for new settings.
const REFRESH: Duration = Duration::from_secs(5);

/// How a hosted server runs: its database, its media root, and the tuning every setting
/// shares (`tuning.data` and `tuning.media` are not used: keys live in the database, media
/// under `media`).
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct HostedConfig {
    /// The deployment's database.
    pub pool: PgPool,
    /// Where every setting's media is kept (one folder or prefix per setting).
    pub media: MediaRoot,
    /// Frame limits, upload size, enrolment throttle.
    pub tuning: ServeConfig,
}

impl HostedConfig {
    /// Defaults over `pool` and `media`.
    #[must_use]
    pub fn new(pool: PgPool, media: MediaRoot) -> HostedConfig {
        HostedConfig {
            pool,
            media,
            tuning: ServeConfig::new(crate::admin::DataDir::new("")),
        }
    }
}

/// One served setting.
struct Entry {
    state: Arc<AppState>,
    key: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
    /// The setting's parents' portal (API, sessions in its own store, UI).
    portal: axum::Router,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<Uuid, Entry>,
    by_host: HashMap<String, Uuid>,
    /// The CA's subject name (DER, as a certificate's issuer field carries it).
    by_issuer: HashMap<Vec<u8>, Uuid>,
    /// The oldest setting: its certificate answers a handshake without a known server name.
    first: Option<Uuid>,
}

/// Every setting of the database being served.
pub(crate) struct Hosted {
    reg: RwLock<Registry>,
    config: HostedConfig,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted").finish_non_exhaustive()
    }
}

fn tls_err(e: &dyn std::fmt::Display) -> ServeError {
    ServeError::Tls(e.to_string())
}

/// The host name a browser asked for: the TLS server name, else the `Host`; none when the two
/// differ or neither was sent.
fn browser_name<'a>(sni: Option<&'a str>, host: Option<&'a str>) -> Option<&'a str> {
    match (sni, host) {
        (Some(s), Some(h)) if !s.eq_ignore_ascii_case(h) => None,
        (Some(n), _) | (None, Some(n)) => Some(n),
        (None, None) => None,
    }
}

/// The issuer name of a certificate (DER), if it parses.
pub(crate) fn issuer_of(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    webpki::EndEntityCert::try_from(cert)
        .ok()
        .map(|c| c.issuer().to_vec())
}

impl Hosted {
    pub(crate) fn new(config: HostedConfig) -> Hosted {
        Hosted {
            reg: RwLock::new(Registry::default()),
            config,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.reg
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every setting served now.
    pub(crate) fn states(&self) -> Vec<Arc<AppState>> {
        self.read()
            .by_id
            .values()
            .map(|e| e.state.clone())
            .collect()
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.config.pool
    }

    pub(crate) fn media(&self) -> &MediaRoot {
        &self.config.media
    }

    /// The setting of a device request: by its client certificate's issuer, or, without a
    /// certificate, by the host name it was sent to.
    pub(crate) fn for_device(&self, peer: &Peer, host: Option<&str>) -> Option<Arc<AppState>> {
        let reg = self.read();
        let id = match &peer.issuer {
            Some(issuer) => reg.by_issuer.get(issuer.as_ref())?,
            None if peer.cert.is_some() => return None,
            None => reg.by_host.get(&host?.to_ascii_lowercase())?,
        };
        reg.by_id.get(id).map(|e| e.state.clone())
    }

    /// The setting at `host`.
    pub(crate) fn for_host(&self, host: Option<&str>) -> Option<Arc<AppState>> {
        let reg = self.read();
        let id = reg.by_host.get(&host?.to_ascii_lowercase())?;
        reg.by_id.get(id).map(|e| e.state.clone())
    }

    /// The portal of the setting a browser request is for, found by the name the browser asked
    /// for: the TLS server name, else the `Host` (without its port). A request whose two names
    /// differ finds none, so a session cookie of one setting is never presented to another's
    /// portal through one connection.
    pub(crate) fn portal_for(&self, sni: Option<&str>, host: Option<&str>) -> Option<axum::Router> {
        let name = browser_name(sni, host)?;
        let reg = self.read();
        let id = reg.by_host.get(&name.to_ascii_lowercase())?;
        reg.by_id.get(id).map(|e| e.portal.clone())
    }

    /// Reads the settings table and starts serving the settings not served yet; returns how
    /// many were added.
    pub(crate) async fn refresh(self: &Arc<Self>) -> Result<usize, ServeError> {
        let pool = self.config.pool.clone();
        let records = tokio::task::spawn_blocking(move || pool.settings())
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))?
            .map_err(|e| ServeError::Data(e.into()))?;
        let mut added = 0;
        for r in records {
            if r.ca_fingerprint.is_none() || self.read().by_id.contains_key(&r.id) {
                continue;
            }
            let (pool, id) = (self.config.pool.clone(), r.id);
            let loaded = tokio::task::spawn_blocking(move || {
                Ok::<_, crate::store::StoreError>((pool.setting_tls(id)?, pool.setting(id)?))
            })
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))?
            .map_err(|e| ServeError::Data(e.into()))?;
            let (Some(tls), store) = loaded else {
                continue;
            };
            let (entry, subject) = self.entry(r.id, &tls, Arc::new(store)).await?;
            let mut reg = self
                .reg
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reg.by_host.insert(r.hostname.clone(), r.id);
            reg.by_issuer.insert(subject, r.id);
            reg.by_id.insert(r.id, entry);
            if reg.first.is_none() {
                reg.first = Some(r.id);
            }
            added += 1;
            tracing::info!(setting = %r.id, "serving setting");
        }
        Ok(added)
    }

    async fn entry(
        &self,
        id: Uuid,
        tls: &SettingTls,
        store: Arc<dyn ServerStore>,
    ) -> Result<(Entry, Vec<u8>), ServeError> {
        let ca = Ca::from_pem(&tls.ca_cert_pem, &tls.ca_key_pem)?;
        let ca_der =
            CertificateDer::from_pem_slice(tls.ca_cert_pem.as_bytes()).map_err(|e| tls_err(&e))?;
        let subject = webpki::EndEntityCert::try_from(&ca_der)
            .map_err(|e| tls_err(&e))?
            .subject()
            .to_vec();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der.clone()).map_err(|e| tls_err(&e))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_err(&e))?;
        let mut chain = CertificateDer::pem_slice_iter(tls.server_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err(&e))?;
        // As for a data directory: the CA goes with the chain, for a device enrolling to pin.
        chain.push(ca_der);
        let key = PrivateKeyDer::from_pem_slice(tls.server_key_pem.as_bytes())
            .map_err(|e| tls_err(&e))?;
        let signing = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| tls_err(&e))?;
        let media = self.config.media.for_setting(Some(id));
        media.prepare().await?;
        let state = Arc::new(AppState {
            changes: changes::Changes::start(store.clone()),
            store,
            media,
            ca,
            config: self.config.tuning.clone(),
            roster_views: Arc::default(),
            reads: Arc::default(),
        });
        let portal = super::portal::router(
            state.clone(),
            self.config.tuning.portal_idle,
            self.config.tuning.portal_absolute,
        )
        .fallback(super::portal::assets);
        Ok((
            Entry {
                portal,
                state,
                key: Arc::new(CertifiedKey::new(chain, signing)),
                verifier,
            },
            subject,
        ))
    }

    /// Refreshes every [`REFRESH`] until aborted.
    pub(crate) async fn refresh_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not read the settings table");
            }
        }
    }

    /// The rustls configuration over every setting served.
    pub(crate) fn tls_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, ServeError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&e))?
            .with_client_cert_verifier(Arc::new(AnySetting(self.clone())))
            .with_cert_resolver(Arc::new(AnySetting(self.clone())));
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The TLS side over every setting: the server certificate by SNI, a client certificate
/// verified against the CA that its issuer names.
#[derive(Debug)]
struct AnySetting(Arc<Hosted>);

impl ResolvesServerCert for AnySetting {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let reg = self.0.read();
        let id = hello
            .server_name()
            .and_then(|n| reg.by_host.get(&n.to_ascii_lowercase()))
            .or(reg.first.as_ref())?;
        reg.by_id.get(id).map(|e| e.key.clone())
    }
}

impl ClientCertVerifier for AnySetting {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Enrolment comes without one.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Thousands of settings: no hints; a device has one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let unknown = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let issuer = issuer_of(end_entity).ok_or_else(unknown)?;
        let verifier = {
            let reg = self.0.read();
            let id = reg.by_issuer.get(&issuer).ok_or_else(unknown)?;
            reg.by_id.get(id).ok_or_else(unknown)?.verifier.clone()
        };
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn a_browser_request_names_one_host_or_none() {
        assert_eq!(
            browser_name(Some("a.example"), Some("A.example")),
            Some("a.example")
        );
        assert_eq!(browser_name(Some("a.example"), None), Some("a.example"));
        assert_eq!(browser_name(None, Some("b.example")), Some("b.example"));
        // A connection made for one setting cannot carry requests for another.
        assert_eq!(browser_name(Some("a.example"), Some("b.example")), None);
        assert_eq!(browser_name(None, None), None);
    }
}

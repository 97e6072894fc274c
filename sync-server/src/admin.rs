//! The admin operations behind the CLI: `init`, staff/child/parent add, enrolment codes and the
//! device register. Each writes through the store, so a running server sees it at once.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sprig_core::{
    ChildId, Consent, Journal, NewChild, ParentId, Role, Roster, RuleError, SettingDoc, StaffId,
    Timestamp,
};
use sprig_proto::DocId;

use crate::by::By;
use crate::ca::{CaError, make_pki};
use crate::docs::{DocStoreError, edit_roster};
use crate::policy::{Policy, PolicyChange, PolicyError, PolicyOutput};
use crate::store::{
    AuditEvent, Device, DeviceStatus, EnrolCode, Invitation, NewSetting, PgPool, ServerStore,
    SettingTls, SqliteStore, StatusChange, StoreError,
};
use rustls::pki_types::pem::PemObject as _;

/// Default enrolment code lifetime.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Shortest portal password accepted (the rule is [`crate::passwords`]).
pub const MIN_PASSWORD_CHARS: usize = crate::passwords::MIN_CHARS;
/// Default port in the public URL written at `init`.
pub const DEFAULT_PORT: u16 = 8443;

/// An admin operation failed. Messages say what to do.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `init` on a data directory that already holds a setting.
    #[error("{0} is already initialised (it holds a Sprig setting); choose another directory")]
    AlreadyInitialised(PathBuf),
    /// A command on a directory without a setting.
    #[error("{0} is not a Sprig data directory; run `sprig-server init --data {0}` first")]
    NotInitialised(PathBuf),
    /// A PIN is not 4–8 digits.
    #[error("a PIN must be 4 to 8 digits")]
    InvalidPin,
    /// A password is too short.
    #[error("a password must be at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    /// A password breaks the rest of the rule (too long, too common).
    #[error("{0}")]
    PasswordRefused(crate::passwords::Refused),
    /// An argument is not valid.
    #[error("{0}")]
    InvalidInput(String),
    /// A roster rule refused the change (unknown key worker, consent not answered, …).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A document could not be read or written.
    #[error(transparent)]
    Doc(#[from] DocStoreError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Certificate work failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// A policy value is not acceptable, or the policy could not be stored.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No child has this id.
    #[error("no child {0} on the roster; see `sprig-server child list`")]
    UnknownChild(String),
    /// No member of staff has this id.
    #[error("no member of staff {0} on the roster; see `sprig-server staff list`")]
    UnknownStaff(String),
    /// No parent has this id.
    #[error("no parent {0} on the roster; see `sprig-server parent list`")]
    UnknownParent(String),
    /// The change would leave the setting without an active manager.
    #[error(
        "this is the setting's last active manager; make another member of staff a manager first"
    )]
    LastManager,
    /// The device is not in the register.
    #[error("no device {0} in the register; see `sprig-server device list`")]
    UnknownDevice(String),
    /// `--setting` names no setting of the database.
    #[error(
        "no setting '{0}' in the database; `--setting` takes a setting's name, host name or id"
    )]
    UnknownSetting(String),
    /// `--setting` names several settings.
    #[error("several settings are called '{0}'; give the host name or the id with --setting")]
    AmbiguousSetting(String),
    /// The database holds no setting yet.
    #[error(
        "the database holds no setting; create one with `sprig-server init --database-url URL --name NAME --hostname HOST`"
    )]
    NoSetting,
    /// The device's state does not allow this lifecycle step.
    #[error("device {id} is {status}: {why}")]
    WrongDeviceState {
        /// The device.
        id: String,
        /// Its status.
        status: &'static str,
        /// Why the step is refused and what to do instead.
        why: &'static str,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The files of a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The CA certificate (PEM).
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    /// The CA private key (PEM, mode 0600).
    #[must_use]
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// The server certificate (PEM).
    #[must_use]
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }

    /// The server private key (PEM, mode 0600).
    #[must_use]
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server.key")
    }

    /// The SQLite database.
    #[must_use]
    pub fn db(&self) -> PathBuf {
        self.root.join("sprig.db")
    }

    /// Stored media files.
    #[must_use]
    pub fn media(&self) -> PathBuf {
        self.root.join("media")
    }

    /// Opens the store of an initialised directory.
    ///
    /// # Errors
    /// [`AdminError::NotInitialised`], [`AdminError::Store`].
    pub fn open_store(&self) -> Result<SqliteStore, AdminError> {
        if !self.db().is_file() || !self.ca_cert().is_file() {
            return Err(AdminError::NotInitialised(self.root.clone()));
        }
        let store = SqliteStore::open(&self.db())?;
        crate::docs::upgrade(&store)?;
        Ok(store)
    }

    /// Reads a file of the directory as text.
    ///
    /// # Errors
    /// [`AdminError::Io`].
    pub fn read(&self, path: &Path) -> Result<String, AdminError> {
        fs::read_to_string(path).map_err(|source| AdminError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Where a setting's CA and server certificate and their keys are kept: the data directory's
/// `ca.*` and `server.*` files ([`DataDir`]), or the settings table of a hosted deployment
/// (`hosting::HostedKeys`). What `enrol-code` and `serve` need the key material from.
pub trait SettingKeys: Send + Sync + std::fmt::Debug {
    /// The setting's certificates and keys.
    ///
    /// # Errors
    /// [`AdminError::Io`] or [`AdminError::Store`] when they cannot be read,
    /// [`AdminError::NotInitialised`] when there are none.
    fn setting_tls(&self) -> Result<SettingTls, AdminError>;

    /// The loaded CA, to sign device certificates and leases.
    ///
    /// # Errors
    /// As [`SettingKeys::setting_tls`], and [`AdminError::Ca`].
    fn ca(&self) -> Result<crate::ca::Ca, AdminError> {
        let tls = self.setting_tls()?;
        Ok(crate::ca::Ca::from_pem(&tls.ca_cert_pem, &tls.ca_key_pem)?)
    }
}

impl SettingKeys for DataDir {
    fn setting_tls(&self) -> Result<SettingTls, AdminError> {
        let ca_cert_pem = self.read(&self.ca_cert())?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(ca_cert_pem.as_bytes())
            .map_err(|_| AdminError::Ca(CaError::Crypto(rcgen::Error::CouldNotParseCertificate)))?;
        Ok(SettingTls {
            ca_fingerprint: crate::ca::fingerprint(&der),
            ca_key_pem: zeroize::Zeroizing::new(self.read(&self.ca_key())?),
            server_cert_pem: self.read(&self.server_cert())?,
            server_key_pem: zeroize::Zeroizing::new(self.read(&self.server_key())?),
            ca_cert_pem,
        })
    }
}

/// A hosted setting's keys, read from the settings table.
#[derive(Clone, Debug)]
pub struct HostedKeys {
    /// The deployment's database.
    pub pool: PgPool,
    /// The setting.
    pub setting: uuid::Uuid,
}

impl SettingKeys for HostedKeys {
    fn setting_tls(&self) -> Result<SettingTls, AdminError> {
        self.pool
            .setting_tls(self.setting)?
            .ok_or_else(|| AdminError::NotInitialised(PathBuf::from(self.setting.to_string())))
    }
}

/// The setting `--setting` names (its name, host name or id), or the oldest one without it.
///
/// # Errors
/// [`AdminError::UnknownSetting`], [`AdminError::AmbiguousSetting`], [`AdminError::NoSetting`],
/// [`AdminError::Store`].
pub fn find_setting(
    pool: &PgPool,
    which: Option<&str>,
) -> Result<crate::store::SettingRecord, AdminError> {
    let all = pool.settings()?;
    let Some(which) = which else {
        return all.into_iter().next().ok_or(AdminError::NoSetting);
    };
    let lower = which.to_ascii_lowercase();
    if let Some(s) = all
        .iter()
        .find(|s| s.id.hyphenated().to_string() == lower || s.hostname == lower)
    {
        return Ok(s.clone());
    }
    let mut named = all.into_iter().filter(|s| s.name == which);
    match (named.next(), named.next()) {
        (Some(s), None) => Ok(s),
        (Some(_), Some(_)) => Err(AdminError::AmbiguousSetting(which.to_owned())),
        _ => Err(AdminError::UnknownSetting(which.to_owned())),
    }
}

/// What `backup` wrote.
#[derive(Debug, Serialize)]
pub struct BackupOutput {
    /// The new data directory.
    pub path: String,
    /// Media files copied.
    pub media_files: u64,
}

/// Copies a data directory, while its server runs, into `dest` (which must not exist): the
/// database as of one moment ([`SqliteStore::backup_to`]), the CA and server certificates and
/// keys (keys mode 0600), and the media files. The copy is itself a data directory: restoring
/// is serving it (`sprig-server serve --data DEST`). Media are copied after the database, so
/// every photo the copied database references was acknowledged, and so stored, before the copy
/// started; photos uploaded meanwhile may come along unreferenced, which is harmless.
///
/// # Errors
/// [`AdminError::AlreadyInitialised`] when `dest` exists, [`AdminError::NotInitialised`],
/// I/O and store errors.
pub fn backup(dir: &DataDir, dest: &Path) -> Result<BackupOutput, AdminError> {
    if dest.exists() {
        return Err(AdminError::AlreadyInitialised(dest.to_owned()));
    }
    let store = dir.open_store()?;
    let out = DataDir::new(dest);
    fs::create_dir_all(dest).map_err(io_at(dest))?;
    store.backup_to(&out.db())?;
    for (from, to, private) in [
        (dir.ca_key(), out.ca_key(), true),
        (dir.server_key(), out.server_key(), true),
        (dir.server_cert(), out.server_cert(), false),
    ] {
        write_file(&to, dir.read(&from)?.as_bytes(), private)?;
    }
    let mut media_files = 0;
    copy_media(&dir.media(), &out.media(), &mut media_files)?;
    // The CA certificate last, as `init` does: its presence marks the copy as complete.
    write_file(&out.ca_cert(), dir.read(&dir.ca_cert())?.as_bytes(), false)?;
    Ok(BackupOutput {
        path: dest.display().to_string(),
        media_files,
    })
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> AdminError + '_ {
    move |source| AdminError::Io {
        path: path.to_owned(),
        source,
    }
}

fn copy_media(from: &Path, to: &Path, count: &mut u64) -> Result<(), AdminError> {
    let entries = match fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(from)(e)),
    };
    fs::create_dir_all(to).map_err(io_at(to))?;
    for e in entries {
        let e = e.map_err(io_at(from))?;
        let name = e.file_name();
        // Half-written uploads are not media.
        if name == "tmp" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().map_err(io_at(&src))?.is_dir() {
            copy_media(&src, &dst, count)?;
        } else {
            fs::copy(&src, &dst).map_err(io_at(&dst))?;
            fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(io_at(&dst))?;
            *count += 1;
        }
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 UTC text for a time in ms.
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), AdminError> {
    let io = |source| AdminError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created with the final mode: a private key is never readable by others, not even
        // for an instant.
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)
}

fn audit(store: &dyn ServerStore, action: &str, detail: String) -> Result<(), AdminError> {
    audit_by(store, &By::cli(), None, action, detail)
}

/// Appends `action` to the audit log as done by `by`, from where `by` asked.
pub(crate) fn audit_by(
    store: &dyn ServerStore,
    by: &By,
    device: Option<&str>,
    action: &str,
    detail: String,
) -> Result<(), AdminError> {
    store.audit(&AuditEvent {
        at: now_ms(),
        actor: by.actor.clone(),
        device: device.map(str::to_owned),
        action: action.into(),
        detail,
        client: by.client.clone(),
    })?;
    Ok(())
}

/// What `init` prints.
#[derive(Clone, Debug, Serialize)]
pub struct InitOutput {
    /// `sha256:<hex>` of the CA certificate.
    pub ca_fingerprint: String,
    /// The new setting's id, in a hosted deployment (absent for a data directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting_id: Option<String>,
}

/// The documents, public URL and audit line of a new setting, in its (empty) store.
fn init_store(
    store: &dyn ServerStore,
    name: &str,
    public_url: &str,
    ca_fingerprint: &str,
) -> Result<(), AdminError> {
    store.create_doc(&DocId::Setting, 0, &SettingDoc::new(name).save())?;
    store.create_doc(&DocId::Roster, 0, &Roster::new().save())?;
    store.set_meta("public_url", public_url)?;
    audit(store, "init", format!("ca={ca_fingerprint}"))
}

/// Creates a setting in a hosted deployment's database: its CA and server certificate (for
/// `hostname`, `localhost` and the loopback addresses), kept in the settings table; its
/// setting document and empty roster; its public URL `https://HOSTNAME` (a load balancer on
/// port 443; `serve --public-url` changes it).
///
/// # Errors
/// [`AdminError::InvalidInput`] without a name or host name, [`AdminError::Store`]
/// (`AlreadyExists` when another setting has the host name).
pub fn init_hosted(pool: &PgPool, name: &str, hostname: &str) -> Result<InitOutput, AdminError> {
    if name.trim().is_empty() {
        return Err(AdminError::InvalidInput(
            "the setting needs a name (--name)".into(),
        ));
    }
    let hostname = hostname.trim().to_ascii_lowercase();
    let host_ok = !hostname.is_empty()
        && hostname.len() <= 253
        && hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_ok {
        return Err(AdminError::InvalidInput(
            "a hosted setting needs its host name (--hostname acorns.example.org): letters,              digits, '-' and '.'"
                .into(),
        ));
    }
    let pki = make_pki(name, Some(&hostname))?;
    let tls = SettingTls {
        ca_fingerprint: pki.ca_fingerprint.clone(),
        ca_cert_pem: pki.ca_cert_pem.clone(),
        ca_key_pem: zeroize::Zeroizing::new(pki.ca_key_pem.clone()),
        server_cert_pem: pki.server_cert_pem.clone(),
        server_key_pem: zeroize::Zeroizing::new(pki.server_key_pem.clone()),
    };
    let record = pool.create_setting_with_tls(&NewSetting::new(name, &hostname), &tls, now_ms())?;
    let store = pool.setting(record.id)?;
    init_store(
        &store,
        name,
        &format!("https://{hostname}"),
        &pki.ca_fingerprint,
    )?;
    Ok(InitOutput {
        ca_fingerprint: pki.ca_fingerprint,
        setting_id: Some(record.id.hyphenated().to_string()),
    })
}

/// Creates a data directory: CA, server certificate, database, setting and empty roster.
///
/// # Errors
/// [`AdminError::AlreadyInitialised`] when it already holds a setting; I/O and crypto errors.
pub fn init(dir: &DataDir, name: &str, hostname: Option<&str>) -> Result<InitOutput, AdminError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| AdminError::Io { path, source }
    };
    if name.trim().is_empty() {
        return Err(AdminError::InvalidInput(
            "the setting needs a name (--name)".into(),
        ));
    }
    for f in [dir.db(), dir.ca_cert(), dir.ca_key()] {
        if f.exists() {
            return Err(AdminError::AlreadyInitialised(dir.root().to_owned()));
        }
    }
    fs::create_dir_all(dir.root()).map_err(io(dir.root()))?;
    fs::create_dir_all(dir.media()).map_err(io(&dir.media()))?;
    let pki = make_pki(name, hostname)?;
    write_file(&dir.ca_key(), pki.ca_key_pem.as_bytes(), true)?;
    write_file(&dir.server_key(), pki.server_key_pem.as_bytes(), true)?;
    write_file(&dir.server_cert(), pki.server_cert_pem.as_bytes(), false)?;
    let store = SqliteStore::open(&dir.db())?;
    let host = hostname.unwrap_or("localhost");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    init_store(
        &store,
        name,
        &format!("https://{host}:{DEFAULT_PORT}"),
        &pki.ca_fingerprint,
    )?;
    // The CA certificate last: its presence marks the directory as initialised.
    write_file(&dir.ca_cert(), pki.ca_cert_pem.as_bytes(), false)?;
    Ok(InitOutput {
        ca_fingerprint: pki.ca_fingerprint,
        setting_id: None,
    })
}

/// Sets the address devices and browsers reach the server at, which enrolment codes and QR
/// links carry: `https://HOST` or `https://HOST:PORT`, nothing after it.
///
/// # Errors
/// [`AdminError::InvalidInput`] for anything else; [`AdminError::Store`].
pub fn set_public_url(store: &dyn ServerStore, url: &str) -> Result<(), AdminError> {
    let bad = || {
        AdminError::InvalidInput(format!(
            "--public-url must look like https://host or https://host:port, not '{}'",
            url.chars().take(100).collect::<String>()
        ))
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // `[v6]:port` or `name:port`, the port optional.
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (&rest[..addr.len() + 2], port)
        }
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    if port.is_some_and(|p| !p.parse::<u16>().is_ok_and(|p| p > 0)) {
        return Err(bad());
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    if !host_ok {
        return Err(bad());
    }
    let url = match port {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    };
    if store.meta("public_url")?.as_deref() != Some(url.as_str()) {
        store.set_meta("public_url", &url)?;
        audit(store, "public_url_set", format!("url={url}"))?;
    }
    Ok(())
}

/// An id printed by the `add` commands.
#[derive(Clone, Debug, Serialize)]
pub struct IdOutput {
    /// The new id.
    pub id: String,
}

fn hash_secret(secret: &str) -> Result<String, AdminError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AdminError::InvalidInput(format!("could not make a salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::InvalidInput(format!("could not hash the secret: {e}")))
}

/// Hashes a tablet PIN (4–8 digits) with Argon2id into a PHC string.
///
/// # Errors
/// [`AdminError::InvalidPin`].
pub fn hash_pin(pin: &str) -> Result<String, AdminError> {
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdminError::InvalidPin);
    }
    hash_secret(pin)
}

/// Hashes a portal password (at least [`MIN_PASSWORD_CHARS`], not a common one) with Argon2id.
///
/// # Errors
/// [`AdminError::PasswordTooShort`], [`AdminError::PasswordRefused`].
pub fn hash_password(pw: &str) -> Result<String, AdminError> {
    match crate::passwords::check(pw) {
        Ok(()) => hash_secret(pw),
        Err(crate::passwords::Refused::TooShort) => Err(AdminError::PasswordTooShort),
        Err(other) => Err(AdminError::PasswordRefused(other)),
    }
}

/// How a member of staff signs in to the console (managers only may): an e-mail address,
/// one login's across staff and parents, and a password.
#[derive(Clone, Copy)]
pub struct StaffLogin<'a> {
    /// The sign-in address, normalised by [`sprig_core::normalise_email`].
    pub email: &'a str,
    /// The password, by the rule of [`crate::passwords`].
    pub password: &'a str,
}

impl std::fmt::Debug for StaffLogin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffLogin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Adds a member of staff with a tablet PIN (hashed into the roster, so devices verify it
/// offline) and optionally a console sign-in: an e-mail address and a password (hashed),
/// both kept on the server only. Every check is made before anything is written.
///
/// # Errors
/// [`AdminError`]; [`RuleError::EmailInUse`] when a parent or another staff member signs in
/// with the address.
pub fn staff_add(
    store: &dyn ServerStore,
    name: &str,
    role: Role,
    pin: &str,
    login: Option<StaffLogin<'_>>,
) -> Result<StaffId, AdminError> {
    staff_add_by(store, name, role, pin, login, &By::cli())
}

/// [`staff_add`] as asked by `by` (a manager in the console), for the audit log.
///
/// # Errors
/// As [`staff_add`].
pub fn staff_add_by(
    store: &dyn ServerStore,
    name: &str,
    role: Role,
    pin: &str,
    login: Option<StaffLogin<'_>>,
    by: &By,
) -> Result<StaffId, AdminError> {
    let pin_hash = hash_pin(pin)?;
    let login = match login {
        None => None,
        Some(l) => {
            let email = sprig_core::normalise_email(l.email)?;
            if store.parent_by_email(&email)?.is_some() || store.staff_by_email(&email)?.is_some() {
                return Err(RuleError::EmailInUse.into());
            }
            Some((email, hash_password(l.password)?))
        }
    };
    let at = Timestamp(now_ms());
    let id = edit_roster(store, |r| -> Result<StaffId, AdminError> {
        let id = r.add_staff(name, role, at)?;
        r.set_pin_hash(&id, &pin_hash, at)?;
        Ok(id)
    })?;
    if let Some((email, h)) = login {
        store
            .set_staff_email(id.as_str(), &email, at.0)
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => AdminError::Rule(RuleError::EmailInUse),
                other => other.into(),
            })?;
        store.set_password(&format!("staff:{id}"), &h, at.0)?;
    }
    audit_by(
        store,
        by,
        None,
        "staff_add",
        format!("staff={id} role={role}"),
    )?;
    Ok(id)
}

/// Adds a child (creating the room by name when absent) and their empty journal.
///
/// # Errors
/// [`AdminError`].
pub fn child_add(
    store: &dyn ServerStore,
    name: &str,
    key_worker: &str,
    room: Option<&str>,
    photo_consent: Consent,
    date_of_birth: Option<&str>,
) -> Result<ChildId, AdminError> {
    let child = NewChildArgs {
        name,
        key_worker,
        room,
        photo_consent,
        date_of_birth,
    };
    child_add_by(store, &child, &By::cli())
}

/// What [`child_add_by`] adds.
#[derive(Clone, Copy, Debug)]
pub struct NewChildArgs<'a> {
    /// Their name.
    pub name: &'a str,
    /// Their key worker's staff id.
    pub key_worker: &'a str,
    /// Their room's name (made when there is none of that name).
    pub room: Option<&'a str>,
    /// The photo-consent answer, if known.
    pub photo_consent: Consent,
    /// `YYYY-MM-DD`, if known.
    pub date_of_birth: Option<&'a str>,
}

/// [`child_add`] as asked by `by`, for the audit log.
///
/// # Errors
/// As [`child_add`].
pub fn child_add_by(
    store: &dyn ServerStore,
    child: &NewChildArgs<'_>,
    by: &By,
) -> Result<ChildId, AdminError> {
    let NewChildArgs {
        name,
        key_worker,
        room,
        photo_consent,
        date_of_birth,
    } = *child;
    let key_worker = StaffId::parse(key_worker)
        .map_err(|e| AdminError::InvalidInput(format!("--key-worker: {e}")))?;
    let at = Timestamp(now_ms());
    let id = edit_roster(store, |r| -> Result<ChildId, AdminError> {
        let room = match room {
            None => None,
            Some(room) => Some(
                match r.rooms().into_iter().find(|x| x.name == room.trim()) {
                    Some(x) => x.id,
                    None => r.add_room(room, at)?,
                },
            ),
        };
        Ok(r.add_child(
            &NewChild {
                name: name.into(),
                date_of_birth: date_of_birth.map(str::to_owned),
                key_worker,
                room,
                photo_consent,
            },
            at,
        )?)
    })?;
    store.create_doc(
        &DocId::Journal(id.clone()),
        0,
        &Journal::new(id.clone()).save(),
    )?;
    audit_by(store, by, None, "child_add", format!("child={id}"))?;
    Ok(id)
}

/// Adds a parent with a portal password, linked to their children. A link takes effect once
/// the child's photo-consent question is answered (by `child add --photo-consent`, or by the
/// parent in the portal after sign-in).
///
/// # Errors
/// [`AdminError`]; nothing is written when any child cannot be linked.
pub fn parent_add(
    store: &dyn ServerStore,
    email: &str,
    name: &str,
    password: &str,
    children: &[String],
) -> Result<ParentId, AdminError> {
    let pw_hash = hash_password(password)?;
    let (id, at) = new_parent(store, email, name, children)?;
    store.set_password(&format!("parent:{id}"), &pw_hash, at)?;
    audit(
        store,
        "parent_add",
        format!("parent={id} children={}", children.len()),
    )?;
    Ok(id)
}

/// How long an invitation link works.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// What `parent invite` made.
#[derive(Clone, Debug, Serialize)]
pub struct InviteOutput {
    /// The new parent's id.
    pub id: String,
    /// The one-time link: `PUBLIC_URL/#/invite/TOKEN`.
    pub link: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
    /// Whether it was also sent by e-mail.
    pub emailed: bool,
}

/// The hex SHA-256 of an invitation token, as the store keys it.
#[must_use]
pub fn invitation_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `s` has the form of an invitation token (64 lower-case hex digits), checked before
/// any look-up.
#[must_use]
pub fn is_invitation_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Adds a parent without a password, linked to their children, and a one-time invitation
/// (valid for [`INVITATION_TTL`] from `now`, ms) with which they set one. The store keeps
/// only the token's hash; the link is returned once. `emailed` is left false: sending it is
/// the caller's (see [`crate::mail`]).
///
/// # Errors
/// [`AdminError`].
pub fn parent_invite(
    store: &dyn ServerStore,
    email: &str,
    name: &str,
    children: &[String],
    now: i64,
) -> Result<InviteOutput, AdminError> {
    parent_invite_by(store, email, name, children, now, &By::cli())
}

/// [`parent_invite`] as asked by `by`, for the audit log.
///
/// # Errors
/// As [`parent_invite`].
pub fn parent_invite_by(
    store: &dyn ServerStore,
    email: &str,
    name: &str,
    children: &[String],
    now: i64,
    by: &By,
) -> Result<InviteOutput, AdminError> {
    let (id, _) = new_parent(store, email, name, children)?;
    let out = invitation_for(store, &id, now)?;
    audit_by(
        store,
        by,
        None,
        "parent_invite",
        format!(
            "parent={id} children={} expires_at={}",
            children.len(),
            out.expires_at
        ),
    )?;
    Ok(out)
}

/// A new invitation link for parent `id`, who has not yet set a password (they lost the
/// first, or it expired): the earlier links stop working.
///
/// # Errors
/// [`AdminError::UnknownParent`]; [`AdminError::InvalidInput`] when they already have a
/// password.
pub fn parent_reinvite(
    store: &dyn ServerStore,
    id: &str,
    now: i64,
    by: &By,
) -> Result<InviteOutput, AdminError> {
    let parent = crate::manage::invitable_parent(store, id)?;
    let id = ParentId::parse(&parent.id).map_err(|e| AdminError::InvalidInput(e.to_string()))?;
    store.revoke_invitations(id.as_str(), now)?;
    let out = invitation_for(store, &id, now)?;
    audit_by(
        store,
        by,
        None,
        "parent_reinvite",
        format!("parent={id} expires_at={}", out.expires_at),
    )?;
    Ok(out)
}

/// Stores a new one-time invitation for parent `id` and returns its link, once.
fn invitation_for(
    store: &dyn ServerStore,
    id: &ParentId,
    now: i64,
) -> Result<InviteOutput, AdminError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let expires_at = now.saturating_add(i64::try_from(INVITATION_TTL.as_millis()).unwrap_or(0));
    store.insert_invitation(&Invitation {
        token_hash: invitation_hash(&token),
        parent: id.to_string(),
        created_at: now,
        expires_at,
        used_at: None,
    })?;
    let url = store
        .meta("public_url")?
        .unwrap_or_else(|| format!("https://localhost:{DEFAULT_PORT}"));
    Ok(InviteOutput {
        id: id.to_string(),
        link: format!("{}/#/invite/{token}", url.trim_end_matches('/')),
        expires_at: rfc3339(expires_at),
        emailed: false,
    })
}

/// Turns a parent's two-step sign-in off (they lost the phone with the authenticator app), so
/// the next sign-in takes the password alone; they may turn it on again from their account.
///
/// # Errors
/// [`AdminError::InvalidInput`] when no parent has the address; [`AdminError::Store`].
pub fn parent_totp_off(store: &dyn ServerStore, email: &str) -> Result<ParentId, AdminError> {
    let email = sprig_core::normalise_email(email)?;
    let Some(id) = store.parent_by_email(&email)? else {
        return Err(AdminError::InvalidInput(format!(
            "no parent has the e-mail address {email}; see the address given to `parent add` or `parent invite`"
        )));
    };
    let id = ParentId::parse(&id).map_err(|e| AdminError::InvalidInput(e.to_string()))?;
    store.delete_totp(&format!("parent:{id}"))?;
    audit(store, "parent_totp_off", format!("parent={id}"))?;
    Ok(id)
}

/// The parent record both `parent add` and `parent invite` make: the roster (which tablets
/// hold) gets the display name and links; the e-mail address stays on the server. Returns the
/// id and the time (ms).
fn new_parent(
    store: &dyn ServerStore,
    email: &str,
    name: &str,
    children: &[String],
) -> Result<(ParentId, i64), AdminError> {
    if children.is_empty() {
        return Err(AdminError::InvalidInput(
            "a parent must be linked to at least one child (--child)".into(),
        ));
    }
    let email = sprig_core::normalise_email(email)?;
    let children = children
        .iter()
        .map(|c| ChildId::parse(c).map_err(|e| AdminError::InvalidInput(format!("--child: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if store.parent_by_email(&email)?.is_some() {
        return Err(RuleError::EmailInUse.into());
    }
    let at = Timestamp(now_ms());
    let id = edit_roster(store, |r| -> Result<ParentId, AdminError> {
        let id = r.add_parent(name, at)?;
        for c in &children {
            r.link_parent(&id, c, at)?;
        }
        Ok(id)
    })?;
    store
        .set_parent_email(id.as_str(), &email, at.0)
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => AdminError::Rule(RuleError::EmailInUse),
            other => other.into(),
        })?;
    Ok((id, at.0))
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in an enrolment code (5 bits each: 50 bits of entropy).
pub const CODE_CHARS: usize = 10;

/// A fresh enrolment code, `XXXXX-XXXXX` in Crockford base32.
#[must_use]
pub fn new_enrol_code() -> String {
    let bytes: [u8; CODE_CHARS] = rand::random();
    let chars: String = bytes
        .iter()
        .map(|b| char::from(CROCKFORD[usize::from(b & 31)]))
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// Normalises a typed code: case, spaces and hyphens ignored, `O`→`0`, `I`/`L`→`1`. `None`
/// when it cannot be a code.
#[must_use]
pub fn normalise_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

/// The stored form of a normalised code.
#[must_use]
pub fn code_hash(normalised: &str) -> String {
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// What `enrol-code` prints.
#[derive(Clone, Debug, Serialize)]
pub struct EnrolCodeOutput {
    /// The one-time code, `XXXXX-XXXXX`.
    pub code: String,
    /// The server URL the device connects to.
    pub url: String,
    /// `sha256:<hex>` of the CA certificate, which the device pins.
    pub ca_fingerprint: String,
    /// When the code stops working (RFC 3339).
    pub expires_at: String,
    /// The QR payload: `sprig://enrol?url=…&code=…&fp=sha256:…`.
    pub qr: String,
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Makes a one-time enrolment code for a device called `device_name`.
///
/// # Errors
/// [`AdminError`].
pub fn enrol_code(
    keys: &dyn SettingKeys,
    store: &dyn ServerStore,
    device_name: &str,
    ttl: Duration,
    by: &By,
) -> Result<EnrolCodeOutput, AdminError> {
    let ca = keys.ca()?;
    enrol_code_for(store, ca.fingerprint(), device_name, ttl, by)
}

/// [`enrol_code`] for a server that holds the setting's CA loaded already: `ca_fingerprint`
/// is its `sha256:<hex>`, which the device pins.
///
/// # Errors
/// [`AdminError`].
pub fn enrol_code_for(
    store: &dyn ServerStore,
    ca_fingerprint: &str,
    device_name: &str,
    ttl: Duration,
    by: &By,
) -> Result<EnrolCodeOutput, AdminError> {
    let device_name = device_name.trim();
    if device_name.is_empty() || device_name.chars().count() > 200 {
        return Err(AdminError::InvalidInput(
            "the device needs a name of 1 to 200 characters (--device-name)".into(),
        ));
    }
    if ttl.is_zero() || ttl > Duration::from_secs(7 * 24 * 3600) {
        return Err(AdminError::InvalidInput(
            "--ttl must be between 1 second and 7 days".into(),
        ));
    }
    let code = new_enrol_code();
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    store.insert_enrol_code(&EnrolCode {
        code_hash: code_hash(&normalise_code(&code).unwrap_or_default()),
        device_name: device_name.into(),
        created_at: now,
        expires_at: expires,
    })?;
    let url = store
        .meta("public_url")?
        .unwrap_or_else(|| format!("https://localhost:{DEFAULT_PORT}"));
    audit_by(
        store,
        by,
        None,
        "enrol_code",
        format!("expires_at={expires}"),
    )?;
    Ok(EnrolCodeOutput {
        qr: format!(
            "sprig://enrol?url={}&code={code}&fp={ca_fingerprint}",
            url_encode(&url),
        ),
        code,
        url,
        ca_fingerprint: ca_fingerprint.to_owned(),
        expires_at: rfc3339(expires),
    })
}

/// Parses a TTL such as `10m`, `90s`, `1h`, `2d` (a bare number is seconds).
///
/// # Errors
/// [`AdminError::InvalidInput`].
pub fn parse_ttl(s: &str) -> Result<Duration, AdminError> {
    crate::policy::parse_duration(s).map_err(|e| AdminError::InvalidInput(e.to_string()))
}

/// One row of `device list --json`.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceOutput {
    /// Device id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `active`, `locked`, `quarantined`, `revoked`, `wipe-pending`, `wiped`,
    /// `retire-pending`, `retired`.
    /// `locked` is an active device whose last check-in is older than the setting's
    /// `lock_after`, or that reported itself locked when it last connected.
    pub status: String,
    /// Last connection (RFC 3339) or null.
    pub last_seen: Option<String>,
    /// Last completed sync (RFC 3339) or null.
    pub last_sync: Option<String>,
    /// Media it has not yet uploaded, as last reported.
    pub unsynced_media: u64,
    /// Documents with unsynced changes, as last reported.
    pub unsynced_docs: u64,
    /// App version, as last reported.
    pub app_version: Option<String>,
    /// Enrolment time (RFC 3339).
    pub enrolled_at: String,
    /// `sha256:<hex>` of its certificate.
    pub cert_fingerprint: String,
    /// Wrong-PIN attempts it has reported, in all (each is in the audit log).
    pub pin_failures: u64,
    /// Whether it reported itself locked when it last connected.
    pub reported_locked: bool,
    /// When a manager asked for a wipe or retire (RFC 3339) or null.
    pub wipe_requested_at: Option<String>,
    /// When the wipe command was last sent to it (RFC 3339) or null.
    pub wipe_delivered_at: Option<String>,
    /// When it acknowledged the wipe (RFC 3339) or null.
    pub wiped_at: Option<String>,
}

impl DeviceOutput {
    /// The register row of `d` under `policy` at time `now` (ms).
    #[must_use]
    pub fn new(d: Device, policy: &Policy, now: i64) -> DeviceOutput {
        let check_in = d.last_sync.unwrap_or(d.created_at);
        let lock_after_ms =
            i64::try_from(policy.lock_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let overdue = now.saturating_sub(check_in) > lock_after_ms;
        let status = if d.status == DeviceStatus::Active && (d.locked || overdue) {
            "locked"
        } else {
            d.status.as_str()
        };
        DeviceOutput {
            status: status.into(),
            pin_failures: d.pin_failures,
            reported_locked: d.locked,
            wipe_requested_at: d.wipe_requested_at.map(rfc3339),
            wipe_delivered_at: d.wipe_delivered_at.map(rfc3339),
            wiped_at: d.wiped_at.map(rfc3339),
            last_seen: d.last_seen.map(rfc3339),
            last_sync: d.last_sync.map(rfc3339),
            unsynced_media: d.unsynced_media,
            unsynced_docs: d.unsynced_docs,
            app_version: d.app_version,
            enrolled_at: rfc3339(d.created_at),
            cert_fingerprint: d.cert_fingerprint,
            id: d.id,
            name: d.name,
        }
    }
}

/// The device register, as of now.
///
/// # Errors
/// [`AdminError::Store`], [`AdminError::Policy`].
pub fn device_list(store: &dyn ServerStore) -> Result<Vec<DeviceOutput>, AdminError> {
    device_register(store, now_ms())
}

/// The device register as of `now` (ms), with each device's status under the current policy.
///
/// # Errors
/// [`AdminError::Store`], [`AdminError::Policy`].
pub fn device_register(store: &dyn ServerStore, now: i64) -> Result<Vec<DeviceOutput>, AdminError> {
    let policy = Policy::load(store)?;
    Ok(store
        .list_devices()?
        .into_iter()
        .map(|d| DeviceOutput::new(d, &policy, now))
        .collect())
}

/// What `device revoke`, `device wipe` and `device retire` print.
#[derive(Clone, Debug, Serialize)]
pub struct StatusOutput {
    /// Device id.
    pub id: String,
    /// Its status now.
    pub status: String,
    /// Whether this command changed it (false: it was already there, or past it).
    pub changed: bool,
    /// Its status before the command (the same as `status` when nothing changed). Not in the
    /// CLI's JSON, whose contract predates it; the console shows it.
    #[serde(skip)]
    pub from: String,
}

/// A manager's device lifecycle command.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Refuse the device from its next request; close its open sessions.
    Revoke,
    /// Wipe it at its next connection, before any sync ("wipe now", lost or stolen).
    Wipe,
    /// Sync everything from it, then wipe it (decommission).
    Retire,
}

impl Lifecycle {
    fn target(self) -> DeviceStatus {
        match self {
            Lifecycle::Revoke => DeviceStatus::Revoked,
            Lifecycle::Wipe => DeviceStatus::WipePending,
            Lifecycle::Retire => DeviceStatus::RetirePending,
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Lifecycle::Revoke => "device_revoke",
            Lifecycle::Wipe => "wipe_requested",
            Lifecycle::Retire => "retire_requested",
        }
    }

    /// The statuses this command changes.
    fn from(self) -> &'static [DeviceStatus] {
        use DeviceStatus::{Active, Quarantined, RetirePending, Revoked};
        match self {
            Lifecycle::Revoke => &[Active, RetirePending, Quarantined],
            // A revoked or quarantined device may still be wiped: it is let in once, to
            // receive the wipe.
            Lifecycle::Wipe => &[Active, Revoked, RetirePending, Quarantined],
            Lifecycle::Retire => &[Active],
        }
    }
}

/// Applies a lifecycle command to device `id`. Idempotent: repeating it, or asking for what
/// the device is already past (wiping a wiped device), changes nothing. A running server
/// applies it at once: a revoked device's open session is closed, a wipe or retire is
/// delivered at its next connection.
///
/// # Errors
/// [`AdminError::UnknownDevice`]; [`AdminError::WrongDeviceState`] when the device's state
/// does not allow it (revoking a device whose wipe is pending would stop the wipe; a revoked
/// device cannot sync to be retired; …); [`AdminError::Store`].
pub fn device_lifecycle(
    store: &dyn ServerStore,
    id: &str,
    cmd: Lifecycle,
    by: &By,
) -> Result<StatusOutput, AdminError> {
    let unknown = |e: StoreError| match e {
        StoreError::NotFound(_) => AdminError::UnknownDevice(id.to_owned()),
        other => AdminError::Store(other),
    };
    let to = cmd.target();
    let change = store
        .change_device_status(id, cmd.from(), to, now_ms())
        .map_err(unknown)?;
    let out = |status: DeviceStatus, from: DeviceStatus| StatusOutput {
        id: id.to_owned(),
        status: status.as_str().to_owned(),
        changed: status != from,
        from: from.as_str().to_owned(),
    };
    let current = match change {
        StatusChange::Changed { from } => {
            audit_by(
                store,
                by,
                Some(id),
                cmd.audit_action(),
                format!("from={} to={}", from.as_str(), to.as_str()),
            )?;
            return Ok(out(to, from));
        }
        StatusChange::Refused { current } => current,
    };
    let wrong = |why| AdminError::WrongDeviceState {
        id: id.to_owned(),
        status: current.as_str(),
        why,
    };
    match (cmd, current) {
        // Already there, or already past it: nothing to do.
        (_, s) if s == to => Ok(out(s, s)),
        (_, DeviceStatus::Wiped | DeviceStatus::Retired) => Ok(out(current, current)),
        (Lifecycle::Revoke, DeviceStatus::WipePending) => Err(wrong(
            "its wipe is still pending, and revoking it would stop the wipe from reaching it; \
             it is refused for good once the wipe is done",
        )),
        (Lifecycle::Retire, DeviceStatus::WipePending) => Err(wrong(
            "it is already to be wiped at its next connection, without a final sync",
        )),
        (Lifecycle::Retire, DeviceStatus::Revoked) => Err(wrong(
            "a revoked device cannot sync, so it cannot be retired; use `device wipe` to wipe it",
        )),
        (Lifecycle::Retire, DeviceStatus::Quarantined) => Err(wrong(
            "a quarantined device cannot sync until it is released; review it with `device \
             held`, then `device release` it and retire it, or `device wipe` it",
        )),
        _ => Err(wrong("this step does not apply to it")),
    }
}

/// Releases a quarantined device: it may sync again, and at its next sync the server replaces
/// its copies of the documents it was refused for with its own, so it goes on from the
/// server's copy. What the refused changes carried stays held for review (`device held`).
///
/// # Errors
/// [`AdminError::UnknownDevice`]; [`AdminError::WrongDeviceState`] when it is not
/// quarantined; [`AdminError::Store`].
pub fn device_release(
    store: &dyn ServerStore,
    id: &str,
    by: &By,
) -> Result<StatusOutput, AdminError> {
    let change = store.release_device(id, now_ms()).map_err(|e| match e {
        StoreError::NotFound(_) => AdminError::UnknownDevice(id.to_owned()),
        other => AdminError::Store(other),
    })?;
    match change {
        StatusChange::Changed { from } => {
            let docs = store.pending_replaces(id)?;
            audit_by(
                store,
                by,
                Some(id),
                "device_release",
                format!("from={} replace_docs={}", from.as_str(), docs.len()),
            )?;
            Ok(StatusOutput {
                id: id.to_owned(),
                status: DeviceStatus::Active.as_str().to_owned(),
                changed: true,
                from: from.as_str().to_owned(),
            })
        }
        StatusChange::Refused { current } => Err(AdminError::WrongDeviceState {
            id: id.to_owned(),
            status: current.as_str(),
            why: "only a quarantined device can be released",
        }),
    }
}

/// One refused change of `device held --json`, with the work it carried.
#[derive(Clone, Debug, Serialize)]
pub struct HeldOutput {
    /// The document the refused change was for (`journal:<child id>`, `roster`, `setting`).
    pub doc: String,
    /// The rule broken.
    pub rule: String,
    /// What broke it.
    pub detail: String,
    /// When it was refused (RFC 3339).
    pub refused_at: String,
    /// When a manager released the device (RFC 3339) or null.
    pub released_at: Option<String>,
    /// When the device's copy was replaced after the release (RFC 3339) or null.
    pub replaced_at: Option<String>,
    /// Bytes of changes held.
    pub held_bytes: usize,
    /// Entries the held changes add or change, as they would read, for review.
    pub entries: Vec<HeldEntry>,
}

/// An entry in held work.
#[derive(Clone, Debug, Serialize)]
pub struct HeldEntry {
    /// Entry id.
    pub id: String,
    /// `new` (the server does not have it) or `changed`.
    pub change: &'static str,
    /// The author's kind and id (`staff:<id>`).
    pub author: String,
    /// When it was recorded (RFC 3339), as the device said.
    pub created_at: String,
    /// Its text.
    pub text: String,
    /// Photos and videos it references.
    pub media: usize,
}

/// What the refused changes of a quarantined (or released) device carried, for a manager to
/// review: every refusal, and the journal entries the held changes would add or change.
///
/// # Errors
/// [`AdminError::UnknownDevice`], [`AdminError::Store`], [`AdminError::Doc`].
pub fn device_held(store: &dyn ServerStore, id: &str) -> Result<Vec<HeldOutput>, AdminError> {
    if store.device(id)?.is_none() {
        return Err(AdminError::UnknownDevice(id.to_owned()));
    }
    let mut out = Vec::new();
    for r in store.quarantines(id)? {
        let q = &r.quarantine;
        let mut entries = Vec::new();
        if let DocId::Journal(_) = &q.doc
            && let Ok(crate::docs::AnyDoc::Journal(server)) = crate::docs::load_doc(store, &q.doc)
        {
            let mut with_held = server.clone();
            // Held bytes that no longer apply (the journal was rebuilt since) show nothing.
            if with_held.apply_incremental(&q.held).is_ok() {
                for e in with_held.entries() {
                    let change = match server.entry(&e.id) {
                        None => "new",
                        Some(ref old) if *old != e => "changed",
                        Some(_) => continue,
                    };
                    entries.push(HeldEntry {
                        id: e.id.to_string(),
                        change,
                        author: format!("{}:{}", e.author.kind_str(), e.author.id_str()),
                        created_at: rfc3339(e.created_at.0),
                        text: e.text,
                        media: e.media.len(),
                    });
                }
            }
        }
        out.push(HeldOutput {
            doc: q.doc.to_string(),
            rule: q.rule.clone(),
            detail: q.detail.clone(),
            refused_at: rfc3339(q.at),
            released_at: r.released_at.map(rfc3339),
            replaced_at: r.replaced_at.map(rfc3339),
            held_bytes: q.held.len(),
            entries,
        });
    }
    Ok(out)
}

/// Changes the setting's device policy (and prints it whole). Takes effect at each device's
/// next session or request, without a restart.
///
/// # Errors
/// [`AdminError::Policy`] for values that do not fit together; [`AdminError::Store`].
pub fn policy_set(
    store: &dyn ServerStore,
    change: &PolicyChange,
) -> Result<PolicyOutput, AdminError> {
    policy_set_by(store, change, &By::cli())
}

/// [`policy_set`] as asked by `by`, for the audit log.
///
/// # Errors
/// As [`policy_set`].
pub fn policy_set_by(
    store: &dyn ServerStore,
    change: &PolicyChange,
    by: &By,
) -> Result<PolicyOutput, AdminError> {
    let old = Policy::load(store)?;
    let new = old.with(change)?;
    if new != old {
        new.save(store)?;
        let out = PolicyOutput::from(&new);
        audit_by(
            store,
            by,
            None,
            "policy_set",
            format!(
                "lock_after={} wipe_after={} max_pin_failures={} allow_networks={}",
                out.lock_after,
                out.wipe_after,
                out.max_pin_failures,
                if out.allow_networks.is_empty() {
                    "any".to_owned()
                } else {
                    out.allow_networks.join(",")
                }
            ),
        )?;
    }
    Ok(PolicyOutput::from(&new))
}

/// The setting's device policy.
///
/// # Errors
/// [`AdminError::Policy`].
pub fn policy_show(store: &dyn ServerStore) -> Result<PolicyOutput, AdminError> {
    Ok(PolicyOutput::from(&Policy::load(store)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typable_and_tolerant() {
        let c = new_enrol_code();
        assert_eq!(c.len(), 11);
        let n = normalise_code(&c).unwrap();
        assert_eq!(normalise_code(&c.to_lowercase()).unwrap(), n);
        assert_eq!(
            normalise_code("oil01-23456").unwrap(),
            "01101-23456".replace('-', "")
        );
        assert!(normalise_code("ABCDE-FGHIJU").is_none());
        assert!(normalise_code("ABCD").is_none());
        assert_ne!(new_enrol_code(), new_enrol_code());
    }

    #[test]
    fn ttl_and_pin_rules() {
        assert_eq!(parse_ttl("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_ttl("2").unwrap(), Duration::from_secs(2));
        assert!(parse_ttl("10 minutes").is_err());
        assert!(matches!(hash_pin("123"), Err(AdminError::InvalidPin)));
        assert!(matches!(hash_pin("12a4"), Err(AdminError::InvalidPin)));
        assert!(hash_pin("1234").unwrap().starts_with("$argon2id$"));
        assert!(matches!(
            hash_password("short"),
            Err(AdminError::PasswordTooShort)
        ));
    }
}

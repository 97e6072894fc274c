//! The command line: clap definitions and the dispatch to the library (binary only).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use sprig_core::{Consent, Role};
use sprig_server::admin::{self, HostedKeys, IdOutput, Lifecycle, SettingKeys};
use sprig_server::config::{ConfigFile, pick};
use sprig_server::manage;
use sprig_server::media_store::{MediaRoot, S3Config, S3MediaStore};
use sprig_server::policy::{Cidr, PolicyChange, PolicyOutput, parse_duration};
use sprig_server::{By, DataDir, HostedConfig, PgPool, PgStore, ServeConfig, ServerStore};

#[derive(Parser)]
#[command(
    name = "sprig-server",
    version,
    about = "Sprig's sync server and admin commands"
)]
pub struct Cli {
    /// Print one JSON object (or array) on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a data directory: setting CA, server certificate, database, setting, roster.
    Init {
        /// A data directory to create (one setting, SQLite).
        #[arg(long, conflicts_with = "database_url")]
        data: Option<PathBuf>,
        /// Or a hosted deployment's database (postgres://…, or SPRIG_DATABASE_URL): migrated,
        /// then given a new setting with its CA.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// The deployment's media (DIR or s3://BUCKET); the setting's folder is made in DIR.
        #[arg(long, value_name = "DIR|s3://BUCKET")]
        media: Option<String>,
        #[arg(long)]
        name: String,
        /// The host name devices and browsers reach the setting at (required with
        /// --database-url: requests find their setting by it).
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Copy a data directory, while its server runs, into a new data directory (database as of
    /// one moment, keys, media); restore by serving the copy. For Postgres use pg_dump
    /// (docs/HOSTING.md).
    Backup {
        #[arg(long)]
        data: PathBuf,
        /// The new directory (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Bring a hosted deployment's database schema up to date (safe from several processes).
    Migrate {
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Serve devices, the portal and the console over HTTPS until Ctrl-C or SIGTERM.
    /// Each option is taken from its flag, else its environment variable (SPRIG_DATA,
    /// SPRIG_DATABASE_URL, SPRIG_MEDIA, SPRIG_S3_ENDPOINT, SPRIG_S3_REGION, SPRIG_LISTEN,
    /// SPRIG_PUBLIC_URL), else the configuration file, else its default.
    Serve {
        /// A TOML configuration file (or SPRIG_CONFIG); see docs/HOSTING.md.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A data directory (one setting, SQLite).
        #[arg(long, conflicts_with = "database_url")]
        data: Option<PathBuf>,
        /// Or a hosted deployment's database (postgres://…, or SPRIG_DATABASE_URL): every
        /// setting in it is served.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Where media is kept: DIR (one folder per setting) or s3://BUCKET[/PREFIX] (with
        /// --s3-endpoint, --s3-region, and the key in AWS_ACCESS_KEY_ID and
        /// AWS_SECRET_ACCESS_KEY). Required with --database-url.
        #[arg(long, value_name = "DIR|s3://BUCKET")]
        media: Option<String>,
        /// The S3 endpoint (http://127.0.0.1:3900); leave out for AWS.
        #[arg(long, value_name = "URL")]
        s3_endpoint: Option<String>,
        /// The S3 region (default us-east-1).
        #[arg(long)]
        s3_region: Option<String>,
        /// The address to listen on (default 127.0.0.1:8443).
        #[arg(long)]
        listen: Option<String>,
        /// The address devices and browsers reach this server at (e.g.
        /// https://sprig.acorns.example:443), which enrolment codes and QR links carry; kept
        /// for later commands. Default: what `init` set, https://HOSTNAME:8443.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Staff members.
    Staff {
        #[command(subcommand)]
        cmd: StaffCmd,
    },
    /// Children.
    Child {
        #[command(subcommand)]
        cmd: ChildCmd,
    },
    /// Parents.
    Parent {
        #[command(subcommand)]
        cmd: ParentCmd,
    },
    /// Make a one-time device enrolment code.
    EnrolCode {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        device_name: String,
        #[arg(long, default_value = "10m")]
        ttl: String,
    },
    /// The enrolled-device register.
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
    },
    /// The setting's device policy: offline lease, wrong-PIN limit, network allow-list.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Rooms.
    Room {
        #[command(subcommand)]
        cmd: RoomCmd,
    },
    /// The audit log: who did what, when, from where.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
}

#[derive(Subcommand)]
enum RoomCmd {
    /// List the rooms, with how many children attend each.
    List {
        #[command(flatten)]
        at: At,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// List audit events, newest first; each filter narrows the list.
    List {
        #[command(flatten)]
        at: At,
        /// Events about this device.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
        /// Events done by, or naming, this member of staff.
        #[arg(long, value_name = "ID")]
        staff: Option<String>,
        /// Events naming this child.
        #[arg(long, value_name = "ID")]
        child: Option<String>,
        /// Events of this action (device_wipe, child_set, staff_set, …).
        #[arg(long)]
        action: Option<String>,
        /// Events at or after this time (RFC 3339, like 2026-12-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// Events before this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Change the policy (options not given keep their value) and print it whole. Running
    /// servers apply it at each device's next sync, without a restart.
    Set {
        #[command(flatten)]
        at: At,
        /// A device that has not synced for this long refuses to unlock (90s, 12h, 90d).
        #[arg(long, value_name = "DURATION")]
        lock_after: Option<String>,
        /// A device that has not synced for this long wipes itself.
        #[arg(long, value_name = "DURATION")]
        wipe_after: Option<String>,
        /// Wrong PINs in a row before a device locks until it syncs.
        #[arg(long, value_name = "N")]
        max_pin_failures: Option<u32>,
        /// Allow device sync only from these networks (repeat, or list several); replaces the
        /// list.
        #[arg(long = "allow-network", value_name = "CIDR", num_args = 1..)]
        allow_network: Vec<String>,
        /// Allow device sync from any network (clears the list).
        #[arg(long, conflicts_with = "allow_network")]
        allow_any_network: bool,
    },
    /// Print the policy.
    Show {
        #[command(flatten)]
        at: At,
    },
}

#[derive(Subcommand)]
enum StaffCmd {
    /// Add a member of staff with a tablet PIN.
    Add {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: RoleArg,
        #[arg(long)]
        pin: String,
        /// The e-mail address a manager signs in to the console with (with --password).
        #[arg(long, requires = "password")]
        email: Option<String>,
        /// The console password (with --email).
        #[arg(long, requires = "email")]
        password: Option<String>,
    },
    /// List the staff: id, name, role, whether active, console address.
    List {
        #[command(flatten)]
        at: At,
    },
    /// Change a member of staff: role, deactivate (their PIN stops working on every tablet at
    /// its next sync), or a new PIN. The setting always keeps one active manager.
    Set {
        #[command(flatten)]
        at: At,
        /// The staff member's id (see `staff list`).
        #[arg(value_name = "STAFF_ID")]
        id: String,
        #[arg(long)]
        role: Option<RoleArg>,
        #[arg(long)]
        deactivate: bool,
        /// A new tablet PIN, 4 to 8 digits.
        #[arg(long)]
        pin: Option<String>,
    },
}

#[derive(Subcommand)]
enum ChildCmd {
    /// Add a child and their journal.
    Add {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        name: String,
        #[arg(long)]
        key_worker: String,
        #[arg(long)]
        room: Option<String>,
        #[arg(long)]
        photo_consent: Option<YesNo>,
        /// Date of birth, YYYY-MM-DD (optional: leave it out when it is not known yet).
        #[arg(long)]
        dob: Option<String>,
    },
    /// List the children: id, name, room, key worker, photo consent, status, parents.
    List {
        #[command(flatten)]
        at: At,
    },
    /// Change a child's key worker, room, photo consent (as recorded on paper), leaving date
    /// or date of birth; options not given keep their value.
    Set {
        #[command(flatten)]
        at: At,
        /// The child's id (see `child list`).
        #[arg(value_name = "CHILD_ID")]
        id: String,
        /// The new key worker's staff id.
        #[arg(long, value_name = "ID")]
        key_worker: Option<String>,
        /// The room's name (made when there is none); "" takes them out of every room.
        #[arg(long)]
        room: Option<String>,
        #[arg(long)]
        photo_consent: Option<YesNo>,
        /// The day they leave, YYYY-MM-DD: from that day they are marked left.
        #[arg(long, value_name = "YYYY-MM-DD")]
        leaving: Option<String>,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        dob: Option<String>,
    },
}

#[derive(Subcommand)]
enum ParentCmd {
    /// Add a parent with a portal password, linked to their children.
    Add {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        password: String,
        #[arg(long = "child", required = true)]
        children: Vec<String>,
    },
    /// Add a parent without a password, linked to their children, and print a one-time link
    /// (valid 7 days) with which they set one; with --smtp-url, also e-mail it to them.
    Invite {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long = "child", required = true)]
        children: Vec<String>,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// List parents and relatives: id, name, e-mail, children, whether they have signed up.
    List {
        #[command(flatten)]
        at: At,
    },
    /// Link a parent or relative to a child's journal (a second parent, a grandparent).
    Link {
        #[command(flatten)]
        at: At,
        #[arg(value_name = "PARENT_ID")]
        parent: String,
        #[arg(value_name = "CHILD_ID")]
        child: String,
    },
    /// Remove a parent's link to a child: they see nothing more of that journal.
    Unlink {
        #[command(flatten)]
        at: At,
        #[arg(value_name = "PARENT_ID")]
        parent: String,
        #[arg(value_name = "CHILD_ID")]
        child: String,
    },
    /// Turn a parent's two-step sign-in off (they lost the phone with the authenticator app):
    /// the next sign-in takes the password alone.
    TotpOff {
        #[command(flatten)]
        at: At,
        #[arg(long)]
        email: String,
    },
}

/// The SMTP relay mail goes out through; without it, nothing is sent.
#[derive(clap::Args)]
struct MailArgs {
    /// The relay: smtps://USER:PASS@HOST[:PORT], smtp://HOST:PORT?tls=required, or
    /// smtp://127.0.0.1:25 for a relay on this machine (default: SPRIG_SMTP_URL).
    #[arg(long, value_name = "URL")]
    smtp_url: Option<String>,
    /// The sender, `Name <address>` (default: SPRIG_MAIL_FROM).
    #[arg(long, value_name = "ADDRESS")]
    mail_from: Option<String>,
}

impl MailArgs {
    fn config(&self) -> anyhow::Result<Option<sprig_server::MailConfig>> {
        let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        let Some(url) = self.smtp_url.clone().or_else(|| env("SPRIG_SMTP_URL")) else {
            return Ok(None);
        };
        let Some(from) = self.mail_from.clone().or_else(|| env("SPRIG_MAIL_FROM")) else {
            anyhow::bail!(
                "--smtp-url needs --mail-from (or SPRIG_MAIL_FROM): whom the mail is from"
            );
        };
        Ok(Some(sprig_server::MailConfig::new(&url, &from)?))
    }
}

/// The invitation e-mail: the link and what it is for; nothing about any child.
fn invitation_mail(name: &str, link: &str) -> String {
    format!(
        "Hello {name},\n\n\
         Your child's early-years setting has invited you to its parents' portal, where you can \
         see your child's learning journal.\n\n\
         Open this link to choose your password (it works once, for 7 days):\n\n\
         {link}\n\n\
         If you did not expect this e-mail, you can ignore it.\n"
    )
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// List enrolled devices.
    List {
        #[command(flatten)]
        at: At,
    },
    /// Revoke a device: refused from its next connection.
    Revoke {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Wipe a device at its next connection, before any sync (then refuse it).
    Wipe {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Retire a device: it syncs everything (documents and media) first, then wipes itself.
    Retire {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Release a quarantined device: it syncs again, and its copies of the documents it was
    /// refused for are replaced by the server's at its next sync.
    Release {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Let a device sync from outside the setting's allowed networks until a time (at most
    /// 31 days ahead); the permission and its end are in the audit log.
    PermitOffsite {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
        /// When the permission ends (RFC 3339, like 2026-12-24T18:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        until: String,
    },
    /// Record that a tablet was taken out of the locked cupboard, or returned to it (its
    /// custody log, in the audit log).
    Custody {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
        #[arg(long)]
        event: CustodyArg,
        /// Who took it, or where to (one line, at most 200 characters).
        #[arg(long)]
        note: Option<String>,
    },
    /// Show what a device's refused changes carried, held for review.
    Held {
        #[command(flatten)]
        at: At,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
}

/// Which setting an admin command acts on: a data directory's, or one of a hosted database's.
#[derive(clap::Args)]
struct At {
    /// A data directory made by `init` (one setting, SQLite).
    #[arg(long, conflicts_with = "database_url")]
    data: Option<PathBuf>,
    /// A hosted deployment's database, postgres://… (default: SPRIG_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Which setting of the database: its name, host name or id (default: the first).
    #[arg(long, value_name = "NAME|HOST|ID")]
    setting: Option<String>,
}

/// A setting opened for an admin command.
struct Opened {
    store: Box<dyn ServerStore>,
    keys: Box<dyn SettingKeys>,
}

/// Ctrl-C, or SIGTERM (what systemd and container runtimes send to stop a service): either
/// stops the server gracefully. Both are registered at the call, inside `rt`, so a signal that
/// comes while the server is still starting is not lost (registering at the future's first
/// poll left a window after the port was open in which SIGTERM killed the process outright).
fn stop_signal(rt: &tokio::runtime::Runtime) -> impl Future<Output = ()> + Send + 'static {
    let _inside = rt.enter();
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut term, mut int)) = signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn database_url(given: Option<&str>) -> Option<String> {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("SPRIG_DATABASE_URL").ok())
        .filter(|u| !u.is_empty())
}

fn open(at: &At) -> anyhow::Result<Opened> {
    if let Some(data) = &at.data {
        let dir = DataDir::new(data);
        return Ok(Opened {
            store: Box::new(dir.open_store()?),
            keys: Box::new(dir),
        });
    }
    let Some(url) = database_url(at.database_url.as_deref()) else {
        anyhow::bail!("give --data DIR (one setting) or --database-url postgres://… (hosted)");
    };
    let pool = PgPool::open(&url)?;
    let setting = admin::find_setting(&pool, at.setting.as_deref())?;
    Ok(Opened {
        store: Box::new(pool.setting(setting.id)?),
        keys: Box::new(HostedKeys {
            pool,
            setting: setting.id,
        }),
    })
}

fn media_root(media: &str, endpoint: Option<&str>, region: &str) -> anyhow::Result<MediaRoot> {
    let Some(rest) = media.strip_prefix("s3://") else {
        return Ok(MediaRoot::Folder(PathBuf::from(media)));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let key = std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID for --media s3://")?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .context("AWS_SECRET_ACCESS_KEY for --media s3://")?;
    let mut config = S3Config::new(endpoint, region, bucket, &key, &secret);
    config.allow_http = endpoint.is_some_and(|e| e.starts_with("http://"));
    if !prefix.is_empty() {
        config.prefix = format!("{}/", prefix.trim_end_matches('/'));
    }
    Ok(MediaRoot::S3(S3MediaStore::new(&config)?))
}

/// `url` with its host replaced by `host` (a hosted setting's public URL from the replicas'
/// shared one: same scheme and port, the setting's own host name).
fn with_host(url: &str, host: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let port = authority
        .rsplit_once(':')
        .filter(|(h, p)| !h.ends_with(']') || !p.is_empty())
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    format!("{scheme}://{host}{port}")
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Practitioner,
    Manager,
}

#[derive(Clone, Copy, ValueEnum)]
enum CustodyArg {
    CheckedOut,
    Returned,
}

#[derive(Clone, Copy, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Practitioner => Role::Practitioner,
            RoleArg::Manager => Role::Manager,
        }
    }
}

impl YesNo {
    fn consent(self) -> Consent {
        match self {
            YesNo::Yes => Consent::Yes,
            YesNo::No => Consent::No,
        }
    }
}

/// One line per row, or `empty` when there are none.
fn table<T>(rows: &[T], empty: &str, line: impl Fn(&T) -> String) -> String {
    if rows.is_empty() {
        return empty.to_owned();
    }
    rows.iter().map(line).collect::<Vec<_>>().join("\n")
}

fn store(at: &At) -> anyhow::Result<Box<dyn ServerStore>> {
    Ok(open(at)?.store)
}

fn lifecycle(at: &At, id: &str, cmd: Lifecycle) -> anyhow::Result<(serde_json::Value, String)> {
    let out = admin::device_lifecycle(store(at)?.as_ref(), id, cmd, &By::cli())?;
    let human = if out.changed {
        format!("Device {} is now {}", out.id, out.status)
    } else {
        format!(
            "Device {} is already {}; nothing changed",
            out.id, out.status
        )
    };
    Ok((serde_json::to_value(out)?, human))
}

fn policy_human(p: &PolicyOutput) -> String {
    format!(
        "lock after {}, wipe after {}, lock after {} wrong PINs, sync allowed from {}",
        p.lock_after,
        p.wipe_after,
        p.max_pin_failures,
        if p.allow_networks.is_empty() {
            "any network".to_owned()
        } else {
            p.allow_networks.join(", ")
        }
    )
}

/// Runs one command; returns its JSON value and its human line.
pub fn run(cli: Cli) -> anyhow::Result<(serde_json::Value, String)> {
    let id = |id: String, what: &str| {
        Ok((
            serde_json::to_value(IdOutput { id: id.clone() })?,
            format!("Added {what} {id}"),
        ))
    };
    match cli.cmd {
        Cmd::Init {
            data,
            database_url: url,
            media,
            name,
            hostname,
        } => {
            if let Some(data) = data {
                let out = admin::init(&DataDir::new(&data), &name, hostname.as_deref())?;
                let human = format!(
                    "Initialised {}; CA fingerprint {}",
                    data.display(),
                    out.ca_fingerprint
                );
                return Ok((serde_json::to_value(out)?, human));
            }
            let Some(url) = database_url(url.as_deref()) else {
                anyhow::bail!(
                    "give --data DIR (one setting) or --database-url postgres://… (hosted)"
                );
            };
            let Some(hostname) = hostname else {
                anyhow::bail!(
                    "a hosted setting needs --hostname (requests find their setting by it)"
                );
            };
            let pool = PgPool::connect(&url)?;
            pool.migrate()?;
            let out = admin::init_hosted(&pool, &name, &hostname)?;
            if let (Some(media), Some(id)) = (media.as_deref(), out.setting_id.as_deref())
                && !media.starts_with("s3://")
            {
                std::fs::create_dir_all(PathBuf::from(media).join(id))
                    .with_context(|| format!("creating the setting's media folder in {media}"))?;
            }
            let human = format!(
                "Initialised setting {} at {hostname} ({}); CA fingerprint {}",
                name,
                out.setting_id.as_deref().unwrap_or_default(),
                out.ca_fingerprint
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Backup { data, out } => {
            let b = admin::backup(&DataDir::new(&data), &out)?;
            let human = format!(
                "Backed up {} into {} ({} media files); restore by serving it: \
                 sprig-server serve --data {}",
                data.display(),
                b.path,
                b.media_files,
                b.path
            );
            Ok((serde_json::to_value(b)?, human))
        }
        Cmd::Migrate { database_url: url } => {
            let Some(url) = database_url(url.as_deref()) else {
                anyhow::bail!("give --database-url postgres://… (or SPRIG_DATABASE_URL)");
            };
            let applied = PgStore::migrate(&url)?;
            let human = if applied.is_empty() {
                "The schema is up to date".to_owned()
            } else {
                format!("Applied schema steps {applied:?}")
            };
            Ok((serde_json::json!({ "applied": applied }), human))
        }
        Cmd::Serve {
            config,
            data,
            database_url: url,
            media,
            s3_endpoint,
            s3_region,
            listen,
            public_url,
        } => {
            let file = match pick(config, "SPRIG_CONFIG", None::<PathBuf>) {
                Some(path) => ConfigFile::load(&path)?,
                None => ConfigFile::default(),
            };
            let data = pick(data, "SPRIG_DATA", file.data.clone());
            let url = pick(url, "SPRIG_DATABASE_URL", file.database_url.clone());
            let media = pick(media, "SPRIG_MEDIA", file.media.clone());
            let s3_endpoint = pick(s3_endpoint, "SPRIG_S3_ENDPOINT", file.s3_endpoint.clone());
            let s3_region = pick(s3_region, "SPRIG_S3_REGION", file.s3_region.clone())
                .unwrap_or_else(|| "us-east-1".to_owned());
            let listen = pick(listen, "SPRIG_LISTEN", file.listen.clone())
                .unwrap_or_else(|| "127.0.0.1:8443".to_owned());
            let public_url = pick(public_url, "SPRIG_PUBLIC_URL", file.public_url.clone());
            let hosted = match (&data, database_url(url.as_deref())) {
                (Some(_), _) => None,
                (None, Some(url)) => Some(url),
                (None, None) => anyhow::bail!(
                    "give --data DIR (one setting) or --database-url postgres://… (hosted)"
                ),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let stop = stop_signal(&rt);
            if let Some(url) = hosted {
                let Some(media) = media else {
                    anyhow::bail!("a hosted server needs --media DIR or --media s3://BUCKET");
                };
                let pool = PgPool::open(&url)?;
                if let Some(public) = &public_url {
                    for s in pool.settings()? {
                        admin::set_public_url(
                            &pool.setting(s.id)?,
                            &with_host(public, &s.hostname),
                        )?;
                    }
                }
                return rt.block_on(async {
                    let root = media_root(&media, s3_endpoint.as_deref(), &s3_region)?;
                    let listener = tokio::net::TcpListener::bind(&listen)
                        .await
                        .with_context(|| format!("listening on {listen}"))?;
                    let mut config = HostedConfig::new(pool, root);
                    file.apply(&mut config.tuning)
                        .map_err(|e| anyhow::anyhow!("the configuration file: {e}"))?;
                    sprig_server::serve_hosted(listener, config, stop).await?;
                    Ok((serde_json::json!({"stopped": true}), "Stopped".to_owned()))
                });
            }
            let data = data.unwrap_or_default();
            if let Some(url) = public_url {
                admin::set_public_url(&DataDir::new(&data).open_store()?, &url)?;
            }
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                let mut config = ServeConfig::new(DataDir::new(&data));
                file.apply(&mut config)
                    .map_err(|e| anyhow::anyhow!("the configuration file: {e}"))?;
                if let Some(media) = &media {
                    config.media = Some(
                        media_root(media, s3_endpoint.as_deref(), &s3_region)?.for_setting(None),
                    );
                }
                sprig_server::serve(listener, config, stop).await?;
                Ok((serde_json::json!({"stopped": true}), "Stopped".to_owned()))
            })
        }
        Cmd::Staff {
            cmd:
                StaffCmd::Add {
                    at,
                    name,
                    role,
                    pin,
                    email,
                    password,
                },
        } => {
            let role = role.role();
            let login = email
                .as_deref()
                .zip(password.as_deref())
                .map(|(email, password)| admin::StaffLogin { email, password });
            id(
                admin::staff_add(store(&at)?.as_ref(), &name, role, &pin, login)?.to_string(),
                "staff member",
            )
        }
        Cmd::Child {
            cmd:
                ChildCmd::Add {
                    at,
                    name,
                    key_worker,
                    room,
                    photo_consent,
                    dob,
                },
        } => {
            let consent = photo_consent.map_or(Consent::NotAsked, YesNo::consent);
            id(
                admin::child_add(
                    store(&at)?.as_ref(),
                    &name,
                    &key_worker,
                    room.as_deref(),
                    consent,
                    dob.as_deref(),
                )?
                .to_string(),
                "child",
            )
        }
        Cmd::Parent {
            cmd:
                ParentCmd::Add {
                    at,
                    email,
                    name,
                    password,
                    children,
                },
        } => id(
            admin::parent_add(store(&at)?.as_ref(), &email, &name, &password, &children)?
                .to_string(),
            "parent",
        ),
        Cmd::Parent {
            cmd:
                ParentCmd::Invite {
                    at,
                    email,
                    name,
                    children,
                    mail,
                },
        } => {
            let mail = mail.config()?;
            let mut out = admin::parent_invite(
                store(&at)?.as_ref(),
                &email,
                &name,
                &children,
                admin::now_ms(),
            )?;
            if let Some(mail) = mail {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the runtime")?;
                let body = invitation_mail(&name, &out.link);
                rt.block_on(mail.send(
                    &name,
                    &email,
                    "Your invitation to the parents' portal",
                    body,
                ))
                .with_context(|| {
                    format!(
                        "parent {} was added, but the invitation was not e-mailed; give them \
                         this link yourself: {}",
                        out.id, out.link
                    )
                })?;
                out.emailed = true;
            }
            let human = format!(
                "Parent {} invited: {}{} (expires {})",
                out.id,
                out.link,
                if out.emailed { ", e-mailed" } else { "" },
                out.expires_at
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Parent {
            cmd: ParentCmd::TotpOff { at, email },
        } => {
            let id = admin::parent_totp_off(store(&at)?.as_ref(), &email)?;
            Ok((
                serde_json::json!({ "id": id.to_string() }),
                format!("Two-step sign-in is off for parent {id}"),
            ))
        }
        Cmd::Staff {
            cmd: StaffCmd::List { at },
        } => {
            let rows = manage::staff_list(store(&at)?.as_ref())?;
            let human = table(&rows, "No staff yet", |s| {
                format!(
                    "{}  {}  {}{}{}",
                    s.id,
                    s.name,
                    s.role,
                    if s.active { "" } else { "  deactivated" },
                    s.email
                        .as_deref()
                        .map(|e| format!("  {e}"))
                        .unwrap_or_default()
                )
            });
            Ok((serde_json::to_value(rows)?, human))
        }
        Cmd::Staff {
            cmd:
                StaffCmd::Set {
                    at,
                    id,
                    role,
                    deactivate,
                    pin,
                },
        } => {
            let change = manage::StaffChange {
                role: role.map(RoleArg::role),
                deactivate,
                pin,
            };
            let row = manage::staff_set(store(&at)?.as_ref(), &id, &change, &By::cli())?;
            let human = format!(
                "{} ({}): {}{}",
                row.name,
                row.id,
                row.role,
                if row.active {
                    ""
                } else {
                    ", deactivated: their PIN stops working on every tablet at its next sync"
                }
            );
            Ok((serde_json::to_value(row)?, human))
        }
        Cmd::Child {
            cmd: ChildCmd::List { at },
        } => {
            let rows = manage::child_list(store(&at)?.as_ref())?;
            let human = table(&rows, "No children yet", |c| {
                format!(
                    "{}  {}  {}  key worker {}  photo consent {}  {}",
                    c.id,
                    c.name,
                    c.room.as_deref().unwrap_or("no room"),
                    c.key_worker_name.as_deref().unwrap_or("none"),
                    c.photo_consent,
                    c.status
                )
            });
            Ok((serde_json::to_value(rows)?, human))
        }
        Cmd::Child {
            cmd:
                ChildCmd::Set {
                    at,
                    id,
                    key_worker,
                    room,
                    photo_consent,
                    leaving,
                    dob,
                },
        } => {
            let change = manage::ChildChange {
                key_worker,
                room,
                photo_consent: photo_consent.map(YesNo::consent),
                leaving,
                date_of_birth: dob,
            };
            let c = manage::child_set(store(&at)?.as_ref(), &id, &change, &By::cli())?;
            let human = format!(
                "{} ({}): {}, key worker {}, photo consent {}, {}{}",
                c.name,
                c.id,
                c.room.as_deref().unwrap_or("no room"),
                c.key_worker_name.as_deref().unwrap_or("none"),
                c.photo_consent,
                c.status,
                c.leaving
                    .as_deref()
                    .map(|d| format!(", leaving {d}"))
                    .unwrap_or_default()
            );
            Ok((serde_json::to_value(c)?, human))
        }
        Cmd::Parent {
            cmd: ParentCmd::List { at },
        } => {
            let rows = manage::parent_list(store(&at)?.as_ref())?;
            let human = table(&rows, "No parents yet", |p| {
                format!(
                    "{}  {}  {}  children {}{}",
                    p.id,
                    p.name,
                    p.email.as_deref().unwrap_or("-"),
                    p.children.join(","),
                    if p.invited { "  invited" } else { "" }
                )
            });
            Ok((serde_json::to_value(rows)?, human))
        }
        Cmd::Parent {
            cmd: ParentCmd::Link { at, parent, child },
        } => {
            let p = manage::parent_link(store(&at)?.as_ref(), &parent, &child, &By::cli())?;
            let human = format!("{} ({}) is linked to child {child}", p.name, p.id);
            Ok((serde_json::to_value(p)?, human))
        }
        Cmd::Parent {
            cmd: ParentCmd::Unlink { at, parent, child },
        } => {
            let p = manage::parent_unlink(store(&at)?.as_ref(), &parent, &child, &By::cli())?;
            let human = format!("{} ({}) is no longer linked to child {child}", p.name, p.id);
            Ok((serde_json::to_value(p)?, human))
        }
        Cmd::Room {
            cmd: RoomCmd::List { at },
        } => {
            let rows = manage::room_list(store(&at)?.as_ref())?;
            let human = table(&rows, "No rooms yet", |r| {
                format!("{}  {}  {} children", r.id, r.name, r.children)
            });
            Ok((serde_json::to_value(rows)?, human))
        }
        Cmd::Audit {
            cmd:
                AuditCmd::List {
                    at,
                    device,
                    staff,
                    child,
                    action,
                    since,
                    until,
                    limit,
                },
        } => {
            let query = sprig_server::store::AuditQuery {
                device,
                staff,
                child,
                action,
                since: since
                    .as_deref()
                    .map(|s| manage::parse_time("--since", s))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|s| manage::parse_time("--until", s))
                    .transpose()?,
                limit,
            };
            let rows = manage::audit_list(store(&at)?.as_ref(), &query)?;
            let human = table(&rows, "No audit events match", |e| {
                format!(
                    "{}  {}  {}{}  {}",
                    e.at,
                    e.actor,
                    e.action,
                    e.device
                        .as_deref()
                        .map(|d| format!(" device={d}"))
                        .unwrap_or_default(),
                    e.detail
                )
            });
            Ok((serde_json::to_value(rows)?, human))
        }
        Cmd::Device {
            cmd:
                DeviceCmd::Custody {
                    at,
                    id,
                    event,
                    note,
                },
        } => {
            let event = match event {
                CustodyArg::CheckedOut => manage::Custody::CheckedOut,
                CustodyArg::Returned => manage::Custody::Returned,
            };
            let out = manage::device_custody(
                store(&at)?.as_ref(),
                &id,
                event,
                note.as_deref(),
                &By::cli(),
            )?;
            let human = match event {
                manage::Custody::CheckedOut => {
                    format!("Device {} is checked out ({})", out.id, out.at)
                }
                manage::Custody::Returned => {
                    format!("Device {} is back in the cupboard ({})", out.id, out.at)
                }
            };
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::PermitOffsite { at, id, until },
        } => {
            let until = manage::parse_time("--until", &until)?;
            let out = manage::device_permit_offsite(store(&at)?.as_ref(), &id, until, &By::cli())?;
            let human = format!(
                "Device {} may sync from outside the allowed networks until {}",
                out.id, out.until
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::EnrolCode {
            at,
            device_name,
            ttl,
        } => {
            let opened = open(&at)?;
            let out = admin::enrol_code(
                opened.keys.as_ref(),
                opened.store.as_ref(),
                &device_name,
                admin::parse_ttl(&ttl)?,
                &By::cli(),
            )?;
            let human = format!(
                "Enrolment code {} for {} (expires {}); CA {}; QR {}",
                out.code, out.url, out.expires_at, out.ca_fingerprint, out.qr
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::Revoke { at, id },
        } => lifecycle(&at, &id, Lifecycle::Revoke),
        Cmd::Device {
            cmd: DeviceCmd::Wipe { at, id },
        } => lifecycle(&at, &id, Lifecycle::Wipe),
        Cmd::Device {
            cmd: DeviceCmd::Retire { at, id },
        } => lifecycle(&at, &id, Lifecycle::Retire),
        Cmd::Device {
            cmd: DeviceCmd::Release { at, id },
        } => {
            let out = admin::device_release(store(&at)?.as_ref(), &id, &By::cli())?;
            let human = format!(
                "Device {} is released: it may sync again, and the documents it was refused for \
                 are replaced by the server's copies at its next sync",
                out.id
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::Held { at, id },
        } => {
            let held = admin::device_held(store(&at)?.as_ref(), &id)?;
            let human = if held.is_empty() {
                format!("Device {id} has had no change refused")
            } else {
                held.iter()
                    .map(|h| {
                        let mut line =
                            format!("{}  {}  {} ({})", h.refused_at, h.doc, h.rule, h.detail);
                        for e in &h.entries {
                            line.push_str(&format!(
                                "\n    {} entry {} by {} at {}: {}",
                                e.change, e.id, e.author, e.created_at, e.text
                            ));
                        }
                        line
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok((serde_json::to_value(held)?, human))
        }
        Cmd::Policy {
            cmd:
                PolicyCmd::Set {
                    at,
                    lock_after,
                    wipe_after,
                    max_pin_failures,
                    allow_network,
                    allow_any_network,
                },
        } => {
            let allow_networks = if allow_any_network {
                Some(Vec::new())
            } else if allow_network.is_empty() {
                None
            } else {
                Some(
                    allow_network
                        .iter()
                        .flat_map(|a| a.split(','))
                        .map(str::parse::<Cidr>)
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            let change = PolicyChange {
                lock_after: lock_after.as_deref().map(parse_duration).transpose()?,
                wipe_after: wipe_after.as_deref().map(parse_duration).transpose()?,
                max_pin_failures,
                allow_networks,
            };
            let out = admin::policy_set(store(&at)?.as_ref(), &change)?;
            let human = format!("Policy: {}", policy_human(&out));
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Policy {
            cmd: PolicyCmd::Show { at },
        } => {
            let out = admin::policy_show(store(&at)?.as_ref())?;
            let human = format!("Policy: {}", policy_human(&out));
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::List { at },
        } => {
            let list = admin::device_list(store(&at)?.as_ref())?;
            let human = list
                .iter()
                .map(|d| {
                    format!(
                        "{}  {}  {}  last sync {}",
                        d.id,
                        d.name,
                        d.status,
                        d.last_sync.as_deref().unwrap_or("never")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok((
                serde_json::to_value(list)?,
                if human.is_empty() {
                    "No devices enrolled".into()
                } else {
                    human
                },
            ))
        }
    }
}

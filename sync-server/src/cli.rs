//! The command line: clap definitions and the dispatch to the library (binary only).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use sprig_core::{Consent, Role};
use sprig_server::admin::{self, IdOutput, Lifecycle};
use sprig_server::policy::{Cidr, PolicyChange, PolicyOutput, parse_duration};
use sprig_server::{DataDir, ServeConfig};

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
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Serve devices over HTTPS until Ctrl-C.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
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
        #[arg(long)]
        data: PathBuf,
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
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Change the policy (options not given keep their value) and print it whole. Running
    /// servers apply it at each device's next sync, without a restart.
    Set {
        #[arg(long)]
        data: PathBuf,
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
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum StaffCmd {
    /// Add a member of staff with a tablet PIN.
    Add {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: RoleArg,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum ChildCmd {
    /// Add a child and their journal.
    Add {
        #[arg(long)]
        data: PathBuf,
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
}

#[derive(Subcommand)]
enum ParentCmd {
    /// Add a parent with a portal password, linked to their children.
    Add {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        password: String,
        #[arg(long = "child", required = true)]
        children: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// List enrolled devices.
    List {
        #[arg(long)]
        data: PathBuf,
    },
    /// Revoke a device: refused from its next connection.
    Revoke {
        #[arg(long)]
        data: PathBuf,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Wipe a device at its next connection, before any sync (then refuse it).
    Wipe {
        #[arg(long)]
        data: PathBuf,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Retire a device: it syncs everything (documents and media) first, then wipes itself.
    Retire {
        #[arg(long)]
        data: PathBuf,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Release a quarantined device: it syncs again, and its copies of the documents it was
    /// refused for are replaced by the server's at its next sync.
    Release {
        #[arg(long)]
        data: PathBuf,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
    /// Show what a device's refused changes carried, held for review.
    Held {
        #[arg(long)]
        data: PathBuf,
        /// The device's id (see `device list`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Practitioner,
    Manager,
}

#[derive(Clone, Copy, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

fn store(data: &std::path::Path) -> anyhow::Result<sprig_server::SqliteStore> {
    Ok(DataDir::new(data).open_store()?)
}

fn lifecycle(
    data: &std::path::Path,
    id: &str,
    cmd: Lifecycle,
) -> anyhow::Result<(serde_json::Value, String)> {
    let out = admin::device_lifecycle(&store(data)?, id, cmd)?;
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
            name,
            hostname,
        } => {
            let out = admin::init(&DataDir::new(&data), &name, hostname.as_deref())?;
            let human = format!(
                "Initialised {}; CA fingerprint {}",
                data.display(),
                out.ca_fingerprint
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Serve {
            data,
            listen,
            public_url,
        } => {
            if let Some(url) = public_url {
                admin::set_public_url(&store(&data)?, &url)?;
            }
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                let stop = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                sprig_server::serve(listener, ServeConfig::new(DataDir::new(data)), stop).await?;
                Ok((serde_json::json!({"stopped": true}), "Stopped".to_owned()))
            })
        }
        Cmd::Staff {
            cmd:
                StaffCmd::Add {
                    data,
                    name,
                    role,
                    pin,
                    password,
                },
        } => {
            let role = match role {
                RoleArg::Practitioner => Role::Practitioner,
                RoleArg::Manager => Role::Manager,
            };
            id(
                admin::staff_add(&store(&data)?, &name, role, &pin, password.as_deref())?
                    .to_string(),
                "staff member",
            )
        }
        Cmd::Child {
            cmd:
                ChildCmd::Add {
                    data,
                    name,
                    key_worker,
                    room,
                    photo_consent,
                    dob,
                },
        } => {
            let consent = match photo_consent {
                None => Consent::NotAsked,
                Some(YesNo::Yes) => Consent::Yes,
                Some(YesNo::No) => Consent::No,
            };
            id(
                admin::child_add(
                    &store(&data)?,
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
                    data,
                    email,
                    name,
                    password,
                    children,
                },
        } => id(
            admin::parent_add(&store(&data)?, &email, &name, &password, &children)?.to_string(),
            "parent",
        ),
        Cmd::EnrolCode {
            data,
            device_name,
            ttl,
        } => {
            let dir = DataDir::new(&data);
            let out = admin::enrol_code(
                &dir,
                &dir.open_store()?,
                &device_name,
                admin::parse_ttl(&ttl)?,
            )?;
            let human = format!(
                "Enrolment code {} for {} (expires {}); CA {}; QR {}",
                out.code, out.url, out.expires_at, out.ca_fingerprint, out.qr
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::Revoke { data, id },
        } => lifecycle(&data, &id, Lifecycle::Revoke),
        Cmd::Device {
            cmd: DeviceCmd::Wipe { data, id },
        } => lifecycle(&data, &id, Lifecycle::Wipe),
        Cmd::Device {
            cmd: DeviceCmd::Retire { data, id },
        } => lifecycle(&data, &id, Lifecycle::Retire),
        Cmd::Device {
            cmd: DeviceCmd::Release { data, id },
        } => {
            let out = admin::device_release(&store(&data)?, &id)?;
            let human = format!(
                "Device {} is released: it may sync again, and the documents it was refused for \
                 are replaced by the server's copies at its next sync",
                out.id
            );
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::Held { data, id },
        } => {
            let held = admin::device_held(&store(&data)?, &id)?;
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
                    data,
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
            let out = admin::policy_set(&store(&data)?, &change)?;
            let human = format!("Policy: {}", policy_human(&out));
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Policy {
            cmd: PolicyCmd::Show { data },
        } => {
            let out = admin::policy_show(&store(&data)?)?;
            let human = format!("Policy: {}", policy_human(&out));
            Ok((serde_json::to_value(out)?, human))
        }
        Cmd::Device {
            cmd: DeviceCmd::List { data },
        } => {
            let list = admin::device_list(&store(&data)?)?;
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

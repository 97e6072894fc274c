//! `sprig-device`: the headless build of the tablet's code. Parses arguments, calls
//! `sprig_device`, prints one JSON value with `--json` (text otherwise); errors go to stderr on
//! one line with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use sprig_core::{AgeBand, Area, Characteristic, ChildId, EntryId, StaffId};
use sprig_device::{
    ChildCoverage, ChildSummary, Coverage, Device, DeviceError, Edit, Enrolment, JournalItem,
    Observation, Status, SyncReport, rfc3339,
};

#[derive(Parser)]
#[command(name = "sprig-device", version, about = "Sprig tablet, headless")]
struct Cli {
    /// Print one JSON value on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with a setting's server.
    Enrol {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        #[arg(long = "ca-fingerprint")]
        ca_fingerprint: String,
        /// The name this tablet reports when it enrols. The register shows the name the
        /// manager gave its enrolment code (`sprig-server enrol-code --device-name`).
        #[arg(long, default_value = "sprig-device")]
        name: String,
    },
    /// Record an observation (works offline).
    Observe {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long = "child", required = true)]
        children: Vec<ChildId>,
        #[arg(long)]
        text: String,
        #[arg(long = "photo")]
        photos: Vec<PathBuf>,
        #[arg(long = "video")]
        videos: Vec<PathBuf>,
        /// An area of learning: its name or the short form (CL PD PSED L M UW EAD).
        #[arg(long = "area", value_parser = parse_area)]
        areas: Vec<Area>,
        #[arg(long = "next-step", default_value = "")]
        next_step: String,
        /// Keep it as a draft, not yet shown to parents.
        #[arg(long)]
        draft: bool,
        /// The Development Matters age band: birth-to-three, three-and-four-year-olds, reception.
        #[arg(long, value_parser = parse_band)]
        band: Option<AgeBand>,
        /// A characteristic of effective learning: playing-and-exploring, active-learning,
        /// creating-and-thinking-critically.
        #[arg(long = "coel", value_parser = parse_coel)]
        coel: Vec<Characteristic>,
    },
    /// List a child's journal, newest first.
    Journal {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        child: ChildId,
    },
    /// The children, the unlocked member of staff's key children first, each with the time
    /// of their newest observation.
    Children {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
    },
    /// Publish a draft observation to the child's parents.
    Publish {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        entry: EntryId,
    },
    /// Correct an observation's text (the earlier text stays visible as a revision).
    Edit {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        entry: EntryId,
        #[arg(long)]
        text: String,
    },
    /// Reply under an entry.
    Reply {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        entry: EntryId,
        #[arg(long)]
        text: String,
        /// Whose journal, for an observation about several children.
        #[arg(long)]
        child: Option<ChildId>,
    },
    /// Parent contributions awaiting review, newest first.
    Pending {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
    },
    /// Approve a parent's contribution into the journal.
    Approve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        entry: EntryId,
    },
    /// Turn a parent's contribution down, with a reason the parent sees.
    Reject {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        entry: EntryId,
        #[arg(long)]
        reason: String,
    },
    /// A manager's coverage: observations per child, per key worker and per area over the last
    /// N days, and the children not observed in them.
    Coverage {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        staff: StaffId,
        #[arg(long)]
        pin: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Sync documents with the server, upload and purge media.
    Sync {
        #[arg(long)]
        data: PathBuf,
    },
    /// Show enrolment, pending media and the last sync.
    Status {
        #[arg(long)]
        data: PathBuf,
    },
}

fn parse_area(s: &str) -> Result<Area, String> {
    Area::parse_any(s).map_err(|e| {
        let known: Vec<String> = Area::ALL
            .iter()
            .map(|a| format!("{} ({})", a.short(), a.as_str()))
            .collect();
        format!("{e}; use one of: {}", known.join(", "))
    })
}

fn parse_band(s: &str) -> Result<AgeBand, String> {
    AgeBand::parse(s).map_err(|e| {
        let known: Vec<&str> = AgeBand::ALL.iter().map(|a| a.as_str()).collect();
        format!("{e}; use one of: {}", known.join(", "))
    })
}

fn parse_coel(s: &str) -> Result<Characteristic, String> {
    Characteristic::parse(s).map_err(|e| {
        let known: Vec<&str> = Characteristic::ALL.iter().map(|a| a.as_str()).collect();
        format!("{e}; use one of: {}", known.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // The contract: one line on stderr. clap's message up to its usage block.
            let text = e.render().to_string();
            let line = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("sprig-device: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli.command) {
        Ok((value, text)) => {
            if cli.json {
                println!("{value}");
            } else {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sprig-device: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<(Value, String)> {
    Ok(match command {
        Command::Enrol {
            data,
            server,
            code,
            ca_fingerprint,
            name,
        } => {
            let done = Device::enrol(
                &data,
                &Enrolment {
                    server_url: server,
                    code,
                    ca_fingerprint,
                    device_name: name,
                },
            )?;
            let text = format!("enrolled as {}", done.device_id);
            (json!({ "device_id": done.device_id }), text)
        }
        Command::Observe {
            data,
            staff,
            pin,
            children,
            text,
            photos,
            videos,
            areas,
            next_step,
            draft,
            band,
            coel,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let id = device.observe(
                &who,
                &Observation {
                    children,
                    text,
                    areas,
                    band,
                    characteristics: coel,
                    next_steps: next_step,
                    photos,
                    videos,
                    draft,
                    ..Observation::default()
                },
            )?;
            (json!({ "id": id.as_str() }), format!("recorded {id}"))
        }
        Command::Journal {
            data,
            staff,
            pin,
            child,
        } => {
            let device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let items = device.journal(&who, &child)?;
            let text = items
                .iter()
                .map(|i| format!("{}  {}", rfc3339(i.entry.created_at), i.entry.text))
                .collect::<Vec<_>>()
                .join("\n");
            (Value::Array(items.iter().map(item_json).collect()), text)
        }
        Command::Children { data, staff, pin } => {
            let device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let children = device.children(&who)?;
            let text = children
                .iter()
                .map(|c| {
                    format!(
                        "{}{}  last observed {}{}",
                        if c.is_key_child { "* " } else { "  " },
                        c.child.name,
                        c.last_observed_at.map_or_else(|| "never".into(), rfc3339),
                        if c.not_observed {
                            " (not observed recently)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (
                Value::Array(children.iter().map(child_json).collect()),
                text,
            )
        }
        Command::Publish {
            data,
            staff,
            pin,
            entry,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            device.publish(&who, &entry)?;
            done(&entry, "published")
        }
        Command::Edit {
            data,
            staff,
            pin,
            entry,
            text,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            device.edit(
                &who,
                &entry,
                &Edit {
                    text: Some(text),
                    ..Edit::default()
                },
            )?;
            (
                json!({ "id": entry.as_str(), "edited": true }),
                format!("edited {entry}"),
            )
        }
        Command::Reply {
            data,
            staff,
            pin,
            entry,
            text,
            child,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let id = device.reply(&who, &entry, child.as_ref(), &text)?;
            (
                json!({ "id": id.as_str(), "entry": entry.as_str() }),
                format!("replied {id}"),
            )
        }
        Command::Pending { data, staff, pin } => {
            let device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let items = device.pending(&who)?;
            let text = items
                .iter()
                .map(|i| {
                    format!(
                        "{}  {}  {}",
                        i.entry.id,
                        rfc3339(i.entry.created_at),
                        i.entry.text
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (Value::Array(items.iter().map(item_json).collect()), text)
        }
        Command::Approve {
            data,
            staff,
            pin,
            entry,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            device.approve(&who, &entry)?;
            done(&entry, "published")
        }
        Command::Reject {
            data,
            staff,
            pin,
            entry,
            reason,
        } => {
            let mut device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            device.reject(&who, &entry, &reason)?;
            done(&entry, "rejected")
        }
        Command::Coverage {
            data,
            staff,
            pin,
            days,
        } => {
            let device = Device::open(&data)?;
            let who = device.unlock(&staff, &pin)?;
            let c = device.coverage(&who, days)?;
            let text = format!(
                "last {} days: {} observations; not observed: {}; pending uploads: {}",
                c.days,
                c.per_child.iter().map(|c| c.observations).sum::<u64>(),
                c.not_observed.len(),
                c.pending_uploads
            );
            (coverage_json(&c), text)
        }
        Command::Sync { data } => {
            // A wiped tablet (by a manager, or by itself just now for being offline past the
            // lease) has nothing left to sync: say so, successfully, every time.
            let mut device = match Device::open(&data) {
                Ok(d) => d,
                Err(e @ (DeviceError::Wiped { .. } | DeviceError::SelfWiped { .. })) => {
                    let status = Device::status_at(&data)?;
                    return Ok((
                        json!({
                            "wiped": true,
                            "wiped_at": status.wiped_at,
                            "reason": e.code(),
                        }),
                        e.to_string(),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let report = device.sync()?;
            if report.wiped {
                let text = if report.retired {
                    "retired: everything is on the server and this tablet has been wiped"
                } else {
                    "this tablet has been wiped as a manager asked; enrol it again with a fresh code"
                };
                return Ok((sync_json(&report), text.to_owned()));
            }
            for f in &report.media_failed {
                eprintln!(
                    "sprig-device: upload of {} failed, copy kept: {}",
                    f.sha256, f.error
                );
            }
            let text = format!(
                "synced: {} documents changed, {} media uploaded, {} purged",
                report.docs_changed, report.media_uploaded, report.media_purged
            );
            (sync_json(&report), text)
        }
        Command::Status { data } => {
            let status = Device::status_at(&data)?;
            let text = if status.wiped {
                format!(
                    "wiped at {}; enrol again with a fresh code",
                    status.wiped_at.as_deref().unwrap_or("an unknown time")
                )
            } else {
                format!(
                    "enrolled: {}, pending media: {}, last sync: {}{}",
                    status.enrolled,
                    status.pending_media,
                    status.last_sync.map_or_else(|| "never".into(), rfc3339),
                    status
                        .locked
                        .map_or_else(String::new, |l| format!(", locked: {}", l.as_str()))
                )
            };
            (status_json(&status), text)
        }
    })
}

fn item_json(i: &JournalItem) -> Value {
    let e = &i.entry;
    json!({
        "id": e.id.as_str(),
        "children": i.children.iter().map(ChildId::as_str).collect::<Vec<_>>(),
        "author": e.author.id_str(),
        "author_kind": e.author.kind_str(),
        "created_at": rfc3339(e.created_at),
        "text": e.text,
        "next_steps": e.next_steps,
        "areas": e.areas.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "band": e.band.map(AgeBand::as_str),
        "coel": e.characteristics.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "status": e.status.as_str(),
        "group": e.group.as_ref().map(sprig_core::GroupId::as_str),
        "kind": e.kind.as_str(),
        "edited_at": e.edited_at.map(rfc3339),
        "replies": e.replies.iter().map(|r| json!({
            "id": r.id.as_str(),
            "author": r.author.id_str(),
            "author_kind": r.author.kind_str(),
            "created_at": rfc3339(r.created_at),
            "text": r.text,
        })).collect::<Vec<_>>(),
        "media": i.media.iter().map(|m| json!({
            "sha256": m.media.sha256.to_hex(),
            "kind": m.media.kind.as_str(),
            "state": m.status.as_str(),
            "mime": m.media.mime,
            "size": m.media.size,
        })).collect::<Vec<_>>(),
    })
}

fn done(entry: &EntryId, status: &str) -> (Value, String) {
    (
        json!({ "id": entry.as_str(), "status": status }),
        format!("{status} {entry}"),
    )
}

fn child_json(c: &ChildSummary) -> Value {
    json!({
        "id": c.child.id.as_str(),
        "name": c.child.name,
        "room": c.room,
        "key_worker": c.child.key_worker.as_str(),
        "key_worker_name": c.key_worker,
        "is_key_child": c.is_key_child,
        "photo_consent": c.child.photo_consent.as_str(),
        "last_observed_at": c.last_observed_at.map(rfc3339),
        "not_observed": c.not_observed,
        "pending": c.pending,
    })
}

fn coverage_child_json(c: &ChildCoverage) -> Value {
    json!({
        "id": c.child.as_str(),
        "name": c.name,
        "key_worker": c.key_worker.as_str(),
        "observations": c.observations,
        "last_observed_at": c.last_observed_at.map(rfc3339),
    })
}

fn coverage_json(c: &Coverage) -> Value {
    json!({
        "days": c.days,
        "since": rfc3339(c.since),
        "per_child": c.per_child.iter().map(coverage_child_json).collect::<Vec<_>>(),
        "per_key_worker": c.per_key_worker.iter().map(|s| json!({
            "id": s.staff.as_str(),
            "name": s.name,
            "observations": s.observations,
            "key_children": s.key_children,
        })).collect::<Vec<_>>(),
        "per_area": c.per_area.iter().map(|(a, n)| json!({
            "area": a.as_str(),
            "short": a.short(),
            "observations": n,
        })).collect::<Vec<_>>(),
        "not_observed": c.not_observed.iter().map(coverage_child_json).collect::<Vec<_>>(),
        "pending_uploads": c.pending_uploads,
        "unsynced_docs": c.unsynced_docs,
    })
}

fn sync_json(r: &SyncReport) -> Value {
    if r.wiped {
        return json!({
            "wiped": true,
            "wiped_at": r.wiped_at,
            "acknowledged": r.wipe_acknowledged,
            "retired": r.retired,
            "docs_changed": r.docs_changed,
            "media_uploaded": r.media_uploaded,
        });
    }
    json!({
        "docs_changed": r.docs_changed,
        "docs_replaced": r.docs_replaced,
        "docs_not_listed": r.docs_not_listed,
        "media_uploaded": r.media_uploaded,
        "media_purged": r.media_purged,
        "media_failed": r.media_failed.len(),
        "media_errors": r.media_failed.iter().map(|f| json!({
            "sha256": f.sha256.to_hex(),
            "error": f.error,
        })).collect::<Vec<_>>(),
        "media_unreferenced": r.media_unreferenced,
        "wipe_requested": r.wipe_requested,
        "last_sync": rfc3339(r.completed_at),
    })
}

fn status_json(s: &Status) -> Value {
    if s.wiped {
        return json!({
            "enrolled": false,
            "wiped": true,
            "wiped_at": s.wiped_at,
        });
    }
    json!({
        "wiped": false,
        "locked": s.locked.map(sprig_device::LockReason::as_str),
        "quarantined": s.quarantined,
        "unsynced_docs": s.unsynced_docs,
        "unreported_pin_failures": s.unreported_pin_failures,
        "enrolled": s.enrolled,
        "device_id": s.device_id,
        "server": s.server_url,
        "pending_media": s.pending_media,
        "uploaded_media": s.uploaded_media,
        "purged_media": s.purged_media,
        "last_sync": s.last_sync.map(rfc3339),
        "documents": s.documents,
        "journals": s.journals,
    })
}

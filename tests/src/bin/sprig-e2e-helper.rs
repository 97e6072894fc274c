//! Server-side test helper for the app's end-to-end run (`ui/e2e/`): writes what only the
//! server writes, through the server's own libraries, into a stopped or running server's data
//! directory. Never part of a tablet.
//!
//! - `set-policies DATA --inactivity-lock-secs N [--not-observed-days D]`: the setting
//!   document's policies (the manager console will write these later).
//! - `parent-contribution DATA --parent ID --child ID --text T`: a parent's contribution from
//!   home, as the parents' portal will write it (pending until staff review it).

use std::process::ExitCode;

use sprig_core::{Actor, Document, NewEntry, Timestamp, plan_entry};
use sprig_proto::DocId;
use sprig_server::ServerStore;
use sprig_server::docs::load_stored;
use sprig_server::store::DocWrite;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn now() -> Timestamp {
    Timestamp(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    )
}

/// Loads `doc`, lets `edit` change it, appends the change.
fn edit(
    data: &str,
    doc: &DocId,
    edit: impl FnOnce(&mut Document, &sprig_core::Roster) -> Result<(), String>,
) -> Result<(), String> {
    let dir = sprig_server::DataDir::new(data);
    let store = dir.open_store().map_err(|e| e.to_string())?;
    let stored_roster = store
        .load_doc(&DocId::Roster)
        .map_err(|e| e.to_string())?
        .ok_or("no roster")?;
    let Document::Roster(roster) =
        load_stored(&DocId::Roster, &stored_roster).map_err(|e| e.to_string())?
    else {
        return Err("not a roster".into());
    };
    let stored = store
        .load_doc(doc)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{doc} does not exist"))?;
    let mut d = load_stored(doc, &stored).map_err(|e| e.to_string())?;
    edit(&mut d, &roster)?;
    let chunk = d.save_incremental();
    store
        .commit_changes(
            None,
            &[DocWrite {
                doc: doc.clone(),
                chunks: vec![chunk],
                heads: d.heads(),
                base_version: stored.version,
                media: Vec::new(),
            }],
            &[],
            &[],
        )
        .map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<String, String> {
    let data = args.get(2).ok_or("usage: see the header")?;
    match args.get(1).map(String::as_str) {
        Some("set-policies") => {
            edit(data, &DocId::Setting, |d, _| {
                let Document::Setting(s) = d else {
                    return Err("not a setting".into());
                };
                let mut p = s.policies();
                if let Some(v) = arg(args, "--inactivity-lock-secs") {
                    p.inactivity_lock_secs = v.parse().map_err(|_| "seconds")?;
                }
                if let Some(v) = arg(args, "--not-observed-days") {
                    p.not_observed_days = v.parse().map_err(|_| "days")?;
                }
                let name = s.name();
                s.set(&name, &p, now()).map_err(|e| e.to_string())
            })?;
            Ok("{\"ok\":true}".into())
        }
        Some("parent-contribution") => {
            let parent = arg(args, "--parent").ok_or("--parent")?;
            let child = arg(args, "--child").ok_or("--child")?;
            let text = arg(args, "--text").ok_or("--text")?;
            let child: sprig_core::ChildId = child.parse().map_err(|_| "child id")?;
            let mut id = String::new();
            edit(data, &DocId::Journal(child.clone()), |d, roster| {
                let Document::Journal(j) = d else {
                    return Err("not a journal".into());
                };
                let plan = plan_entry(
                    roster,
                    &Actor::Parent(parent.parse().map_err(|_| "parent id")?),
                    NewEntry {
                        children: vec![child.clone()],
                        text: text.clone(),
                        ..NewEntry::default()
                    },
                    now(),
                )
                .map_err(|e| e.to_string())?;
                id = plan.id.to_string();
                j.apply_entry(&plan).map_err(|e| e.to_string())
            })?;
            Ok(format!("{{\"id\":\"{id}\"}}"))
        }
        _ => Err("commands: set-policies, parent-contribution".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sprig-e2e-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

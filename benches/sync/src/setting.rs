//! Builds a server data directory holding a synthetic setting with a year of text observations,
//! directly through the server library (no CLI calls, no network).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sprig_core::{Actor, Area, ChildId, Consent, NewEntry, Role, StaffId, Timestamp, plan_entry};
use sprig_proto::DocId;
use sprig_server::docs::{AnyDoc, compact, load_doc};
use sprig_server::store::{DocWrite, NewDevice, Redeemed};
use sprig_server::{DataDir, ServerStore, SqliteStore, admin};

/// The staff member who records everything, and their PIN.
pub const PIN: &str = "2468";

/// What was built.
#[derive(Debug)]
pub struct Built {
    pub staff: StaffId,
    pub children: Vec<ChildId>,
    pub entries: usize,
    pub text_chars: usize,
}

/// Deterministic xorshift, so every run builds the same texts.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

const WORDS: &[&str] = &[
    "today",
    "she",
    "he",
    "built",
    "a",
    "tall",
    "tower",
    "with",
    "the",
    "wooden",
    "blocks",
    "and",
    "counted",
    "each",
    "one",
    "carefully",
    "before",
    "it",
    "fell",
    "laughed",
    "tried",
    "again",
    "painted",
    "sky",
    "blue",
    "mixed",
    "yellow",
    "to",
    "make",
    "green",
    "shared",
    "spade",
    "sand",
    "pit",
    "took",
    "turns",
    "friend",
    "talked",
    "about",
    "snail",
    "found",
    "under",
    "log",
    "asked",
    "why",
    "shell",
    "was",
    "spiral",
    "listened",
    "story",
    "joined",
    "in",
    "repeated",
    "refrain",
    "threaded",
    "beads",
    "onto",
    "lace",
    "pattern",
    "red",
    "then",
    "poured",
    "water",
    "jugs",
    "noticed",
    "full",
    "empty",
    "climbed",
    "frame",
    "independently",
    "jumped",
    "two",
    "feet",
    "used",
    "scissors",
    "cut",
    "along",
    "line",
    "wrote",
    "first",
    "letter",
    "of",
    "their",
    "name",
    "recognised",
    "number",
    "five",
    "on",
    "door",
    "sang",
    "song",
    "actions",
    "helped",
    "tidy",
    "snack",
    "time",
    "chose",
    "apple",
    "said",
    "please",
    "thank",
    "you",
    "without",
    "prompt",
];

/// A realistic observation text: 40–120 words (≈ 200–650 characters, mean ≈ 400).
pub fn observation_text(rng: &mut Rng) -> String {
    let words = 40 + rng.below(81);
    let mut s = String::with_capacity(words * 6);
    let mut start = true;
    for i in 0..words {
        let w = WORDS[rng.below(WORDS.len())];
        if i > 0 {
            s.push(' ');
        }
        if start {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
            start = false;
        } else {
            s.push_str(w);
        }
        if i + 1 == words || rng.below(12) == 0 {
            s.push('.');
            start = true;
        }
    }
    s
}

fn next_steps(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        String::new()
    } else {
        let mut t = observation_text(rng);
        t.truncate(t.len().min(120));
        t
    }
}

/// Creates `dir` with a setting: one practitioner, `children` children (rooms Acorns/Oaks), and
/// `per_child` published text observations in each journal spread over a year. Each journal
/// is written as one chunk of `per_child` changes and compacted to a snapshot.
/// With `export`, each journal's saved bytes are also written to `export/<child>.automerge`.
pub fn build(
    dir: &DataDir,
    children: usize,
    per_child: usize,
    export: Option<&Path>,
) -> Result<Built> {
    let t0 = Instant::now();
    admin::init(dir, "Bench Nursery", Some("localhost"))?;
    let store = dir.open_store()?;
    let staff = admin::staff_add(&store, "Key Worker", Role::Practitioner, PIN, None)?;
    let mut ids = Vec::with_capacity(children);
    for i in 0..children {
        let room = if i % 2 == 0 { "Acorns" } else { "Oaks" };
        ids.push(admin::child_add(
            &store,
            &format!("Child {i:03}"),
            &staff.to_string(),
            Some(room),
            Consent::Yes,
            None,
        )?);
    }
    let AnyDoc::Roster(roster) = load_doc(&store, &DocId::Roster)? else {
        bail!("the roster did not load as a roster");
    };
    if let Some(e) = export {
        std::fs::create_dir_all(e)?;
    }
    let actor = Actor::Staff(staff.clone());
    let year_start: i64 = 1_735_689_600_000; // 2025-01-01
    let step = 365 * 24 * 3600 * 1000 / i64::try_from(per_child.max(1))?;
    let mut rng = Rng::new(7);
    let mut chars = 0;
    for child in &ids {
        let doc = DocId::Journal(child.clone());
        let AnyDoc::Journal(mut journal) = load_doc(&store, &doc)? else {
            bail!("a journal did not load as a journal");
        };
        for k in 0..per_child {
            let text = observation_text(&mut rng);
            chars += text.chars().count();
            let areas = (0..1 + rng.below(2))
                .map(|_| Area::ALL[rng.below(Area::ALL.len())])
                .collect();
            let plan = plan_entry(
                &roster,
                &actor,
                NewEntry {
                    children: vec![child.clone()],
                    text,
                    areas,
                    next_steps: next_steps(&mut rng),
                    ..NewEntry::default()
                },
                Timestamp(year_start + step * i64::try_from(k)?),
            )?;
            journal.apply_entry(&plan)?;
        }
        let chunk = journal.save_incremental();
        let base_version = store.load_doc(&doc)?.map_or(0, |d| d.version);
        store.commit_changes(
            None,
            &[DocWrite {
                doc: doc.clone(),
                chunks: vec![chunk],
                heads: journal.heads(),
                base_version,
                media: Vec::new(),
            }],
            &[],
            &[],
        )?;
        compact(&store, &doc)?;
        if let Some(e) = export {
            std::fs::write(e.join(format!("{child}.automerge")), journal.save())?;
        }
    }
    eprintln!(
        "built {} journals x {per_child} observations ({chars} text chars) in {:.1} s",
        ids.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(Built {
        staff,
        children: ids,
        entries: children * per_child,
        text_chars: chars,
    })
}

/// Credentials of a device registered directly in the store (no network): what a real
/// enrolment would have given it.
#[derive(Debug, Clone)]
pub struct Creds {
    pub device_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// Registers a device the way `POST /v1/enrol` does (a one-time code redeemed with a
/// CA-issued certificate for the device's own key), but in-process.
pub fn register_device(dir: &DataDir, store: &SqliteStore, name: &str) -> Result<Creds> {
    let code = admin::enrol_code(
        dir,
        store,
        name,
        Duration::from_secs(600),
        &sprig_server::By::cli(),
    )?;
    let norm = admin::normalise_code(&code.code).context("the code did not normalise")?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)?
        .pem()?;
    let ca_pem = dir.read(&dir.ca_cert())?;
    let ca = sprig_server::ca::Ca::from_pem(&ca_pem, &dir.read(&dir.ca_key())?)?;
    let mut r = Rng::new(now_seed());
    let device_id = format!(
        "{:032x}",
        (u128::from(r.next()) << 64) | u128::from(r.next())
    );
    let device_id = format!(
        "{}-{}-{}-{}-{}",
        &device_id[..8],
        &device_id[8..12],
        &device_id[12..16],
        &device_id[16..20],
        &device_id[20..]
    );
    let cert = ca.issue_device_cert(&csr, &device_id)?;
    let new = NewDevice {
        id: device_id.clone(),
        name: name.to_owned(),
        cert_serial: cert.serial.clone(),
        cert_fingerprint: cert.fingerprint.clone(),
        created_at: admin::now_ms(),
        app_version: Some("bench".into()),
    };
    match store.redeem_enrol_code(&admin::code_hash(&norm), admin::now_ms(), &new)? {
        Redeemed::Enrolled(_) => {}
        other => bail!("registering {name} failed: {other:?}"),
    }
    Ok(Creds {
        device_id,
        cert_pem: cert.pem,
        key_pem: key.serialize_pem(),
        ca_pem,
    })
}

fn now_seed() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    u64::try_from(t & u128::from(u64::MAX)).unwrap_or(0)
        ^ N.fetch_add(0x1234_5678_9abc, std::sync::atomic::Ordering::Relaxed)
}

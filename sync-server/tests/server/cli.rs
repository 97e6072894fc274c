//! The admin CLI's exact contracts, run as a real process with `--json`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use sprig_core::{ChildId, Consent, StaffId};
use sprig_proto::DocId;
use sprig_server::docs::{AnyDoc, load_doc};
use sprig_server::{DataDir, ServerStore};

fn sprig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs with `--json`, expects success and one JSON value on stdout.
fn ok_json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = sprig(&a);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Expects failure with a one-line human error on stderr and nothing on stdout.
fn fails(args: &[&str]) -> String {
    let out = sprig(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_private_keys_and_refuses_a_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let v = ok_json(&[
        "init",
        "--data",
        d,
        "--name",
        "Acorns",
        "--hostname",
        "sprig.example",
    ]);
    assert_eq!(keys(&v), ["ca_fingerprint"]);
    let dd = DataDir::new(&data);
    assert_eq!(mode(&dd.ca_key()), 0o600);
    assert_eq!(mode(&dd.server_key()), 0o600);
    // The printed fingerprint is the SHA-256 of the CA certificate's DER.
    let pem = std::fs::read_to_string(dd.ca_cert()).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
        .unwrap();
    assert_eq!(v["ca_fingerprint"], sprig_server::ca::fingerprint(&der));
    // The server certificate names every address a device may use, and is signed by the CA.
    let spem = std::fs::read_to_string(dd.server_cert()).unwrap();
    let sder: rustls::pki_types::CertificateDer<'_> =
        rustls::pki_types::pem::PemObject::from_pem_slice(spem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&sder).unwrap();
    let sans = format!(
        "{:?}",
        cert.subject_alternative_name().unwrap().unwrap().value
    );
    for name in [
        "\"localhost\"",
        "\"sprig.example\"",
        "[127, 0, 0, 1]",
        "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]",
    ] {
        assert!(sans.contains(name), "{name} missing from {sans}");
    }
    let (_, ca) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.verify_signature(Some(ca.public_key())).is_ok());
    let err = fails(&["init", "--data", d, "--name", "Again"]);
    assert!(err.contains("already initialised"), "{err}");
    assert_eq!(std::fs::read_to_string(dd.ca_cert()).unwrap(), pem);
    // Setting and empty roster exist.
    let store = dd.open_store().unwrap();
    let docs: Vec<DocId> = store
        .list_docs()
        .unwrap()
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(docs, [DocId::Roster, DocId::Setting]);
    assert_eq!(
        store.meta("public_url").unwrap().as_deref(),
        Some("https://sprig.example:8443")
    );
}

#[test]
fn admin_commands_keep_their_json_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let d = d.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);

    let staff = ok_json(&[
        "staff",
        "add",
        "--data",
        d,
        "--name",
        "Amara Okafor",
        "--role",
        "manager",
        "--pin",
        "1234",
        "--email",
        "amara@example.org",
        "--password",
        "correct horse battery",
    ]);
    assert_eq!(keys(&staff), ["id"]);
    let staff_id = staff["id"].as_str().unwrap();
    let child = ok_json(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Test Child",
        "--key-worker",
        staff_id,
        "--room",
        "Ladybirds",
        "--photo-consent",
        "yes",
    ]);
    assert_eq!(keys(&child), ["id"]);
    let child_id = child["id"].as_str().unwrap();
    let unasked = ok_json(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Other Child",
        "--key-worker",
        staff_id,
        "--room",
        "Ladybirds",
    ]);
    let parent = ok_json(&[
        "parent",
        "add",
        "--data",
        d,
        "--email",
        "p@example.org",
        "--name",
        "A Parent",
        "--password",
        "0123456789ab",
        "--child",
        child_id,
    ]);
    assert_eq!(keys(&parent), ["id"]);
    let code = ok_json(&["enrol-code", "--data", d, "--device-name", "Room 1 tablet"]);
    assert_eq!(
        keys(&code),
        ["ca_fingerprint", "code", "expires_at", "qr", "url"]
    );
    let c = code["code"].as_str().unwrap();
    assert!(sprig_server::admin::normalise_code(c).is_some(), "{c}");
    assert!(
        code["qr"]
            .as_str()
            .unwrap()
            .starts_with("sprig://enrol?url=https%3A%2F%2F")
    );
    assert!(
        code["qr"]
            .as_str()
            .unwrap()
            .contains(&format!("&code={c}&fp=sha256:"))
    );
    assert_eq!(
        ok_json(&["device", "list", "--data", d]),
        serde_json::json!([])
    );

    // Refusals: one line on stderr, nothing written.
    assert!(
        fails(&[
            "staff", "add", "--data", d, "--name", "X", "--role", "manager", "--pin", "12"
        ])
        .contains("PIN")
    );
    assert!(
        fails(&[
            "parent",
            "add",
            "--data",
            d,
            "--email",
            "q@example.org",
            "--name",
            "Q",
            "--password",
            "short",
            "--child",
            child_id
        ])
        .contains("at least 12")
    );
    // A child whose consent question is unanswered can be linked: the link takes effect once
    // the parent answers it in the portal.
    let unasked_id = unasked["id"].as_str().unwrap();
    ok_json(&[
        "parent",
        "add",
        "--data",
        d,
        "--email",
        "q@example.org",
        "--name",
        "Q",
        "--password",
        "0123456789ab",
        "--child",
        unasked_id,
    ]);
    fails(&[
        "device",
        "list",
        "--data",
        dir.path().join("nope").to_str().unwrap(),
    ]);

    // What the commands wrote, read back through the store.
    let store = DataDir::new(d).open_store().unwrap();
    let AnyDoc::Roster(roster) = load_doc(&store, &DocId::Roster).unwrap() else {
        panic!()
    };
    let s = roster.staff(&StaffId::parse(staff_id).unwrap()).unwrap();
    assert!(s.pin_hash.unwrap().starts_with("$argon2id$"));
    let ch = roster.child(&ChildId::parse(child_id).unwrap()).unwrap();
    assert_eq!(ch.photo_consent, Consent::Yes);
    assert_eq!(
        roster.room(ch.room.as_ref().unwrap()).unwrap().name,
        "Ladybirds"
    );
    let other = roster.child(&ChildId::parse(unasked_id).unwrap()).unwrap();
    assert_eq!(other.photo_consent, Consent::NotAsked);
    assert_eq!(other.room, ch.room, "the room is reused by name");
    // The refused parents (short password) were not added; the one linked to the child whose
    // consent is unanswered was.
    assert_eq!(roster.parents().len(), 2);
    assert!(
        store
            .password(&format!("staff:{staff_id}"))
            .unwrap()
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert!(store.load_doc(&DocId::Journal(ch.id)).unwrap().is_some());
    let actions: Vec<String> = store
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["init", "staff_add", "child_add", "parent_add", "enrol_code"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}

#[test]
fn policy_set_keeps_unchanged_values_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    let defaults = serde_json::json!({
        "lock_after": "12h", "lock_after_secs": 43_200,
        "wipe_after": "90d", "wipe_after_secs": 7_776_000,
        "max_pin_failures": 10, "allow_networks": [],
    });
    assert_eq!(ok_json(&["policy", "set", "--data", d]), defaults);
    let v = ok_json(&[
        "policy",
        "set",
        "--data",
        d,
        "--lock-after",
        "90s",
        "--wipe-after",
        "2h",
        "--max-pin-failures",
        "3",
        "--allow-network",
        "10.0.0.0/8",
        "192.168.1.0/24",
    ]);
    assert_eq!(
        v,
        serde_json::json!({
            "lock_after": "90s", "lock_after_secs": 90,
            "wipe_after": "2h", "wipe_after_secs": 7200,
            "max_pin_failures": 3, "allow_networks": ["10.0.0.0/8", "192.168.1.0/24"],
        })
    );
    // Options not given keep their values; the list can be cleared.
    let v = ok_json(&["policy", "set", "--data", d, "--allow-any-network"]);
    assert_eq!(
        (v["lock_after"].as_str(), v["max_pin_failures"].as_u64()),
        (Some("90s"), Some(3))
    );
    assert_eq!(v["allow_networks"], serde_json::json!([]));
    assert_eq!(ok_json(&["policy", "show", "--data", d]), v);

    assert!(fails(&["policy", "set", "--data", d, "--lock-after", "12x"]).contains("'12x'"));
    assert!(
        fails(&["policy", "set", "--data", d, "--lock-after", "3h"])
            .contains("shorter than wipe-after")
    );
    assert!(
        fails(&[
            "policy",
            "set",
            "--data",
            d,
            "--allow-network",
            "10.0.0.0/33"
        ])
        .contains("10.0.0.0/33")
    );
    fails(&["policy", "set", "--data", d, "--max-pin-failures", "0"]);
    // Refused changes wrote nothing.
    assert_eq!(ok_json(&["policy", "show", "--data", d]), v);
    let store = DataDir::new(d).open_store().unwrap();
    let changes = store
        .audit_log(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "policy_set")
        .count();
    assert_eq!(changes, 2, "one row per change, none for a no-op");
}

#[test]
fn device_retire_revoke_and_wipe_print_the_new_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    let dd = DataDir::new(d);
    let store = dd.open_store().unwrap();
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let code = sprig_server::admin::enrol_code(
            &dd,
            &store,
            name,
            sprig_server::admin::DEFAULT_CODE_TTL,
            &sprig_server::By::cli(),
        )
        .unwrap()
        .code;
        let hash =
            sprig_server::admin::code_hash(&sprig_server::admin::normalise_code(&code).unwrap());
        let id = format!("device-{name}");
        store
            .redeem_enrol_code(
                &hash,
                sprig_server::admin::now_ms(),
                &sprig_server::store::NewDevice {
                    id: id.clone(),
                    name: name.into(),
                    cert_serial: "01".into(),
                    cert_fingerprint: format!("sha256:{name}"),
                    created_at: sprig_server::admin::now_ms(),
                    app_version: None,
                },
            )
            .unwrap();
        ids.push(id);
    }
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    assert_eq!(
        ok_json(&["device", "retire", "--data", d, a]),
        serde_json::json!({"id": a, "status": "retire-pending", "changed": true})
    );
    let list = ok_json(&["device", "list", "--data", d]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == a)
        .unwrap();
    assert_eq!(row["status"], "retire-pending");
    assert!(row["wipe_requested_at"].is_string());
    for k in [
        "last_seen",
        "last_sync",
        "unsynced_media",
        "unsynced_docs",
        "pin_failures",
    ] {
        assert!(row.get(k).is_some(), "{k}");
    }
    assert_eq!(
        ok_json(&["device", "wipe", "--data", d, a])["status"],
        "wipe-pending"
    );
    assert!(fails(&["device", "revoke", "--data", d, a]).contains("wipe is still pending"));
    assert_eq!(
        ok_json(&["device", "revoke", "--data", d, b]),
        serde_json::json!({"id": b, "status": "revoked", "changed": true})
    );
    assert!(fails(&["device", "retire", "--data", d, b]).contains("device wipe"));
    assert!(fails(&["device", "wipe", "--data", d, "nobody"]).contains("no device nobody"));
    let actions: Vec<String> = store
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for x in ["retire_requested", "wipe_requested", "device_revoke"] {
        assert!(actions.iter().any(|y| y == x), "{x}: {actions:?}");
    }
}

#[test]
fn child_dob_is_stored_and_release_and_held_refuse_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let d = d.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    let staff = ok_json(&[
        "staff",
        "add",
        "--data",
        d,
        "--name",
        "Amara Okafor",
        "--role",
        "practitioner",
        "--pin",
        "1234",
    ]);
    let child = ok_json(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Test Child",
        "--key-worker",
        staff["id"].as_str().unwrap(),
        "--dob",
        "2022-04-01",
    ]);
    let store = DataDir::new(d).open_store().unwrap();
    let AnyDoc::Roster(roster) = load_doc(&store, &DocId::Roster).unwrap() else {
        panic!()
    };
    let id = ChildId::parse(child["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        roster.child(&id).unwrap().date_of_birth.as_deref(),
        Some("2022-04-01")
    );
    let err = fails(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Other",
        "--key-worker",
        staff["id"].as_str().unwrap(),
        "--dob",
        "2022-02-30",
    ]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");

    let err = fails(&["device", "release", "--data", d, "no-such-device"]);
    assert!(err.contains("no device no-such-device"), "{err}");
    let err = fails(&["device", "held", "--data", d, "no-such-device"]);
    assert!(err.contains("no device no-such-device"), "{err}");
}

/// A hosted deployment from the command line (`--database-url`, Postgres from
/// `SPRIG_TEST_DATABASE_URL`): `migrate`, `init` per setting (with `--hostname`, its CA kept
/// in the database), and admin commands choosing the setting with `--setting` (name, host
/// name or id; the first by default); another setting's device ids do not exist.
#[test]
fn hosted_settings_from_the_command_line() {
    let url = sprig_server::store::pg_testing::fresh_database(
        &sprig_server::store::pg_testing::test_database_url(),
        false,
    )
    .unwrap();
    let media = tempfile::tempdir().unwrap();
    let m = media.path().to_str().unwrap();
    let v = ok_json(&["migrate", "--database-url", &url]);
    assert!(!v["applied"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(
        ok_json(&["migrate", "--database-url", &url])["applied"],
        serde_json::json!([])
    );
    let a = ok_json(&[
        "init",
        "--database-url",
        &url,
        "--media",
        m,
        "--name",
        "Acorns",
        "--hostname",
        "acorns.example.org",
    ]);
    assert_eq!(keys(&a), ["ca_fingerprint", "setting_id"]);
    let a_id = a["setting_id"].as_str().unwrap();
    assert!(media.path().join(a_id).is_dir());
    let b = ok_json(&[
        "init",
        "--database-url",
        &url,
        "--media",
        m,
        "--name",
        "Birch",
        "--hostname",
        "birch.example.org",
    ]);
    assert_ne!(a["ca_fingerprint"], b["ca_fingerprint"]);
    // The same host name twice is refused.
    fails(&[
        "init",
        "--database-url",
        &url,
        "--name",
        "Again",
        "--hostname",
        "acorns.example.org",
    ]);
    // An enrolment code per setting, with that setting's CA.
    let code_b = ok_json(&[
        "enrol-code",
        "--database-url",
        &url,
        "--setting",
        "birch.example.org",
        "--device-name",
        "tablet",
    ]);
    assert_eq!(code_b["ca_fingerprint"], b["ca_fingerprint"]);
    assert!(
        code_b["url"]
            .as_str()
            .unwrap()
            .contains("birch.example.org"),
        "{code_b}"
    );
    let code_a = ok_json(&[
        "enrol-code",
        "--database-url",
        &url,
        "--device-name",
        "tablet",
    ]);
    assert_eq!(
        code_a["ca_fingerprint"], a["ca_fingerprint"],
        "the first setting by default"
    );
    ok_json(&[
        "staff",
        "add",
        "--database-url",
        &url,
        "--setting",
        "Birch",
        "--name",
        "Bea",
        "--role",
        "manager",
        "--pin",
        "1357",
    ]);
    // A device of B, revoked through A: A has no such device.
    let pool = sprig_server::PgPool::open(&url).unwrap();
    let store_b = pool
        .setting(b["setting_id"].as_str().unwrap().parse().unwrap())
        .unwrap();
    store_b
        .insert_enrol_code(&sprig_server::store::EnrolCode {
            code_hash: "h".into(),
            device_name: "b tablet".into(),
            created_at: 0,
            expires_at: i64::MAX,
        })
        .unwrap();
    store_b
        .redeem_enrol_code(
            "h",
            1,
            &sprig_server::store::NewDevice {
                id: "dev-b".into(),
                name: String::new(),
                cert_serial: "01".into(),
                cert_fingerprint: "sha256:b".into(),
                created_at: 1,
                app_version: None,
            },
        )
        .unwrap();
    let err = fails(&[
        "device",
        "revoke",
        "--database-url",
        &url,
        "--setting",
        a_id,
        "dev-b",
    ]);
    assert!(err.contains("no device dev-b"), "{err}");
    let list = ok_json(&[
        "device",
        "list",
        "--database-url",
        &url,
        "--setting",
        "Birch",
    ]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let v = ok_json(&[
        "device",
        "revoke",
        "--database-url",
        &url,
        "--setting",
        "Birch",
        "dev-b",
    ]);
    assert_eq!(v["status"], "revoked");
    let err = fails(&[
        "device",
        "list",
        "--database-url",
        &url,
        "--setting",
        "Nowhere",
    ]);
    assert!(err.contains("no setting 'Nowhere'"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_reads_its_config_file_takes_env_over_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    ok_json(&["init", "--data", data_s, "--name", "Config Nursery"]);
    let (file_port, env_port) = (free_port(), free_port());
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data = {data_s:?}\nlisten = \"127.0.0.1:{file_port}\"\n\n[limits]\n\
             max_media_mb = 64\nportal_idle = \"15m\"\n"
        ),
    )
    .unwrap();

    // A typo is refused at start, naming the file and the line.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "data = \"/x\"\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let err = fails(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.toml") && err.contains("lisen") && err.contains("line 2"),
        "{err}"
    );

    // The environment wins over the file: the server listens on SPRIG_LISTEN's port.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(["serve", "--json"])
        .env("SPRIG_CONFIG", &config)
        .env("SPRIG_LISTEN", format!("127.0.0.1:{env_port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", env_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened on SPRIG_LISTEN's port"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "the file's port must not be used when SPRIG_LISTEN is set"
    );
    // SIGTERM, as systemd sends it, stops the server gracefully.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(stopped["stopped"], true);
}

#[test]
fn staff_add_gives_a_manager_a_sign_in_address_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    let out = ok_json(&[
        "staff",
        "add",
        "--data",
        d,
        "--name",
        "Morgan Hale",
        "--role",
        "manager",
        "--pin",
        "8642",
        "--email",
        " Morgan@Example.org",
        "--password",
        "the manager's pass phrase",
    ]);
    let id = out["id"].as_str().unwrap().to_owned();
    let store = DataDir::new(&data).open_store().unwrap();
    assert_eq!(
        store
            .staff_by_email("morgan@example.org")
            .unwrap()
            .as_deref(),
        Some(id.as_str())
    );
    assert!(store.password(&format!("staff:{id}")).unwrap().is_some());
    // Without them, as before: a PIN only.
    let pin_only = ok_json(&[
        "staff",
        "add",
        "--data",
        d,
        "--name",
        "Kim",
        "--role",
        "practitioner",
        "--pin",
        "1357",
    ]);
    let kim = pin_only["id"].as_str().unwrap();
    assert!(store.staff_email(kim).unwrap().is_none());
    // One without the other is refused by the parser, before anything is written.
    for (flag, value) in [
        ("--password", "a long pass phrase"),
        ("--email", "x@example.org"),
    ] {
        let out = sprig(&[
            "staff", "add", "--data", d, "--name", "X", "--role", "manager", "--pin", "2468", flag,
            value,
        ]);
        assert!(!out.status.success(), "{flag} alone");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--email") || err.contains("--password"),
            "{err}"
        );
    }
    // An address already signing someone in, a bad address, a weak password: refused, and no
    // staff member is added.
    let before = store.audit_log(100).unwrap().len();
    for (email, password, says) in [
        ("MORGAN@example.org", "another long pass phrase", "in use"),
        ("not an address", "another long pass phrase", "e-mail"),
        ("new@example.org", "short", "12"),
    ] {
        let err = fails(&[
            "staff",
            "add",
            "--data",
            d,
            "--name",
            "Y",
            "--role",
            "manager",
            "--pin",
            "2468",
            "--email",
            email,
            "--password",
            password,
        ]);
        assert!(err.contains(says), "{email}: {err}");
    }
    assert_eq!(store.audit_log(100).unwrap().len(), before);
}

#[test]
fn roster_commands_list_change_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    let add_staff = |name: &str, role: &str, pin: &str| {
        ok_json(&[
            "staff", "add", "--data", d, "--name", name, "--role", role, "--pin", pin,
        ])["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let morgan = add_staff("Morgan Hale", "manager", "8642");
    let kim = add_staff("Kim Keyworker", "practitioner", "1357");
    let ada = ok_json(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Ada Birchley",
        "--key-worker",
        &kim,
        "--room",
        "Acorns",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let parent = ok_json(&[
        "parent",
        "invite",
        "--data",
        d,
        "--email",
        "sam@example.org",
        "--name",
        "Sam Birchley",
        "--child",
        &ada,
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The lists, with the ids the other commands take.
    let staff = ok_json(&["staff", "list", "--data", d]);
    assert_eq!(staff.as_array().unwrap().len(), 2);
    assert_eq!(
        keys(&staff[0]),
        ["active", "email", "has_pin", "id", "name", "role"]
    );
    assert_eq!(staff[0]["name"], "Kim Keyworker");
    assert_eq!(staff[1]["id"], morgan.as_str());
    let children = ok_json(&["child", "list", "--data", d]);
    assert_eq!(
        keys(&children[0]),
        [
            "date_of_birth",
            "id",
            "key_worker",
            "key_worker_name",
            "leaving",
            "name",
            "parents",
            "photo_consent",
            "room",
            "status"
        ]
    );
    assert_eq!(children[0]["id"], ada.as_str());
    assert_eq!(children[0]["room"], "Acorns");
    assert_eq!(children[0]["key_worker_name"], "Kim Keyworker");
    assert_eq!(children[0]["photo_consent"], "unanswered");
    assert_eq!(children[0]["status"], "attending");
    assert_eq!(children[0]["parents"], serde_json::json!([parent]));
    let parents = ok_json(&["parent", "list", "--data", d]);
    assert_eq!(parents[0]["email"], "sam@example.org");
    assert_eq!(parents[0]["invited"], true);
    assert_eq!(parents[0]["has_password"], false);
    let rooms = ok_json(&["room", "list", "--data", d]);
    assert_eq!(rooms[0]["name"], "Acorns");
    assert_eq!(rooms[0]["children"], 1);

    // child set: each option changes one thing, the rest stay.
    let c = ok_json(&[
        "child",
        "set",
        "--data",
        d,
        &ada,
        "--key-worker",
        &morgan,
        "--room",
        "Oaks",
        "--photo-consent",
        "yes",
        "--dob",
        "2022-03-04",
    ]);
    assert_eq!(
        (
            &c["key_worker"],
            &c["room"],
            &c["photo_consent"],
            &c["date_of_birth"]
        ),
        (
            &serde_json::json!(morgan),
            &serde_json::json!("Oaks"),
            &serde_json::json!("yes"),
            &serde_json::json!("2022-03-04")
        )
    );
    let rooms = ok_json(&["room", "list", "--data", d]);
    assert_eq!(rooms.as_array().unwrap().len(), 2);
    // A leaving day ahead is recorded; one today or past marks the child left.
    let c = ok_json(&["child", "set", "--data", d, &ada, "--leaving", "2099-07-31"]);
    assert_eq!(
        (&c["leaving"], &c["status"]),
        (&"2099-07-31".into(), &"attending".into())
    );
    let c = ok_json(&["child", "set", "--data", d, &ada, "--leaving", "2020-07-31"]);
    assert_eq!(c["status"], "left");
    // Refusals: unknown ids, bad dates, nothing to change.
    let e = fails(&[
        "child",
        "set",
        "--data",
        d,
        &ChildId::new_random().to_string(),
        "--room",
        "Oaks",
    ]);
    assert!(e.contains("no child") && e.contains("child list"), "{e}");
    let e = fails(&["child", "set", "--data", d, "not-an-id", "--room", "Oaks"]);
    assert!(e.contains("no child not-an-id"), "{e}");
    let e = fails(&["child", "set", "--data", d, &ada, "--leaving", "31/07/2027"]);
    assert!(e.contains("YYYY-MM-DD"), "{e}");
    let e = fails(&[
        "child",
        "set",
        "--data",
        d,
        &ada,
        "--key-worker",
        &StaffId::new_random().to_string(),
    ]);
    assert!(e.contains("staff list"), "{e}");
    let e = fails(&["child", "set", "--data", d, &ada]);
    assert!(e.contains("nothing to change"), "{e}");

    // staff set: the last manager cannot stop managing; then another can.
    let e = fails(&["staff", "set", "--data", d, &morgan, "--deactivate"]);
    assert!(e.contains("last active manager"), "{e}");
    let e = fails(&[
        "staff",
        "set",
        "--data",
        d,
        &morgan,
        "--role",
        "practitioner",
    ]);
    assert!(e.contains("last active manager"), "{e}");
    let k = ok_json(&[
        "staff", "set", "--data", d, &kim, "--role", "manager", "--pin", "2468",
    ]);
    assert_eq!(k["role"], "manager");
    let m = ok_json(&["staff", "set", "--data", d, &morgan, "--deactivate"]);
    assert_eq!(
        (&m["active"], &m["role"]),
        (&false.into(), &"manager".into())
    );
    let e = fails(&["staff", "set", "--data", d, &kim, "--pin", "12"]);
    assert!(e.contains("4 to 8 digits"), "{e}");
    let e = fails(&[
        "staff",
        "set",
        "--data",
        d,
        &StaffId::new_random().to_string(),
        "--deactivate",
    ]);
    assert!(e.contains("no member of staff"), "{e}");
    // The deactivated PIN is gone from nothing but `active`: tablets refuse it by that.
    let store = DataDir::new(&data).open_store().unwrap();
    let AnyDoc::Roster(r) = load_doc(&store, &DocId::Roster).unwrap() else {
        panic!("not a roster")
    };
    assert!(!r.staff(&StaffId::parse(&morgan).unwrap()).unwrap().active);

    // parent link and unlink.
    let bram = ok_json(&[
        "child",
        "add",
        "--data",
        d,
        "--name",
        "Bram Coldwell",
        "--key-worker",
        &kim,
        "--photo-consent",
        "no",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = ok_json(&["parent", "link", "--data", d, &parent, &bram]);
    let mut linked = vec![ada.clone(), bram.clone()];
    linked.sort();
    assert_eq!(p["children"], serde_json::json!(linked));
    let p = ok_json(&["parent", "unlink", "--data", d, &parent, &ada]);
    assert_eq!(p["children"], serde_json::json!([bram]));
    let e = fails(&["parent", "unlink", "--data", d, &parent, &ada]);
    assert!(e.contains("is not linked"), "{e}");
    let e = fails(&[
        "parent",
        "link",
        "--data",
        d,
        &sprig_core::ParentId::new_random().to_string(),
        &ada,
    ]);
    assert!(e.contains("no parent") && e.contains("parent list"), "{e}");
    let e = fails(&[
        "parent",
        "link",
        "--data",
        d,
        &parent,
        &ChildId::new_random().to_string(),
    ]);
    assert!(e.contains("no child"), "{e}");

    // permit-offsite refuses what it cannot do.
    let e = fails(&[
        "device",
        "permit-offsite",
        "--data",
        d,
        "nope",
        "--until",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(e.contains("no device nope"), "{e}");
    let e = fails(&[
        "device",
        "permit-offsite",
        "--data",
        d,
        "nope",
        "--until",
        "next tuesday",
    ]);
    assert!(e.contains("RFC 3339"), "{e}");

    let e = fails(&[
        "device", "custody", "--data", d, "nope", "--event", "returned",
    ]);
    assert!(e.contains("no device nope"), "{e}");

    // The audit log has all of it, filtered.
    let all = ok_json(&["audit", "list", "--data", d]);
    assert_eq!(
        keys(&all[0]),
        ["action", "actor", "at", "client", "detail", "device"]
    );
    let about_ada = ok_json(&["audit", "list", "--data", d, "--child", &ada]);
    let actions: Vec<&str> = about_ada
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "parent_unlink",
            "child_set",
            "child_set",
            "child_set",
            "child_add"
        ]
    );
    let about_morgan = ok_json(&[
        "audit",
        "list",
        "--data",
        d,
        "--staff",
        &morgan,
        "--action",
        "staff_set",
    ]);
    assert_eq!(about_morgan.as_array().unwrap().len(), 1);
    assert!(
        about_morgan[0]["detail"]
            .as_str()
            .unwrap()
            .contains("deactivate=true")
    );
    let future = ok_json(&[
        "audit",
        "list",
        "--data",
        d,
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(future, serde_json::json!([]));
    let e = fails(&["audit", "list", "--data", d, "--since", "yesterday"]);
    assert!(e.contains("--since") && e.contains("RFC 3339"), "{e}");
}

#[test]
fn a_reader_that_stops_early_is_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok_json(&["init", "--data", d, "--name", "Acorns"]);
    // The reader goes away before the answer is written, as `| head` does once it has read
    // enough: the write fails with a broken pipe, which is no failure of the command.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(["staff", "list", "--data", d])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

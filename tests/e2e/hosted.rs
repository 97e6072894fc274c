//! The real tablet binary against a hosted deployment: two `sprig-server serve
//! --database-url` processes over one Postgres database (`SPRIG_TEST_DATABASE_URL`, which
//! `scripts/with-postgres.sh` exports; without it this fails) and one media folder, the
//! setting made with `init --database-url` at host name `localhost`, so the tablets' TLS server
//! name finds it. One tablet enrols and syncs through each replica; what one records the other
//! reads; a revoke through the CLI refuses the other's next sync.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sprig_e2e::{DeviceDir, Proc, bins, free_port, path_str, spawn_listening};
use sprig_server::store::pg_testing::{fresh_database, test_database_url};

const PIN: &str = "2468";

fn server(args: &[&str]) -> Output {
    Command::new(&bins().server)
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn serve(url: &str, media: &str, log: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(&bins().server);
    cmd.args(["serve", "--database-url", url, "--media", media])
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let proc = spawn_listening(&mut cmd, log, port).unwrap_or_else(|| {
        panic!(
            "sprig-server serve did not listen on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (proc, port)
}

#[test]
fn tablets_sync_through_two_hosted_replicas() {
    let url = fresh_database(&test_database_url(), false).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    let m = path_str(&media);
    let init = json(&server(&[
        "init",
        "--database-url",
        &url,
        "--media",
        m,
        "--name",
        "Acorn Pre-School",
        "--hostname",
        "localhost",
    ]));
    let fingerprint = init["ca_fingerprint"].as_str().unwrap().to_owned();
    let at = ["--database-url", url.as_str()];
    let staff = json(&server(
        &[
            &["staff", "add"][..],
            &at,
            &[
                "--name",
                "Amara Okafor",
                "--role",
                "practitioner",
                "--pin",
                PIN,
            ],
        ]
        .concat(),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = json(&server(
        &[
            &["child", "add"][..],
            &at,
            &[
                "--name",
                "Ada Birchley",
                "--key-worker",
                &staff,
                "--photo-consent",
                "yes",
            ],
        ]
        .concat(),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut p1, port1) = serve(&url, m, &tmp.path().join("replica-1.log"));
    let (mut p2, port2) = serve(&url, m, &tmp.path().join("replica-2.log"));

    let code = |name: &str| {
        json(&server(
            &[&["enrol-code"][..], &at, &["--device-name", name]].concat(),
        ))["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a = DeviceDir::new(tmp.path().join("tablet-a"));
    let b = DeviceDir::new(tmp.path().join("tablet-b"));
    let a_id = a
        .enrol_with(
            &format!("https://localhost:{port1}"),
            &code("A"),
            &fingerprint,
        )
        .json()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_id = b
        .enrol_with(
            &format!("https://localhost:{port2}"),
            &code("B"),
            &fingerprint,
        )
        .json()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(a_id, b_id);
    a.sync();
    b.sync();
    a.observe(&staff, PIN, &[&child], "Planted beans", &[]);
    a.sync();
    b.sync();
    let texts: Vec<String> = b
        .journal(&staff, PIN, &child)
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["Planted beans"]);

    // Revoked through the CLI (another process, its own connection): B's next sync through
    // its replica is refused; A carries on.
    let v = json(&server(
        &[&["device", "revoke"][..], &at, &[&b_id]].concat(),
    ));
    assert_eq!(v["status"], "revoked");
    let err = b.cmd("sync", &[]).error();
    assert!(err.contains("revoked"), "{err}");
    a.observe(&staff, PIN, &[&child], "Watered them", &[]);
    a.sync();
    let devices = json(&server(&[&["device", "list"][..], &at].concat()));
    assert_eq!(devices.as_array().unwrap().len(), 2);
    p1.kill();
    p2.kill();
}

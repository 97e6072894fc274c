//! `sprig-server serve` as a real process, with admin commands run beside it on the same data
//! directory.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{client_config, key_and_csr, request};

fn cli(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_process_takes_admin_changes_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    cli(&["init", "--data", d, "--name", "Acorns"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args([
            "serve",
            "--data",
            d,
            "--listen",
            &listen,
            "--public-url",
            "https://sprig.acorns.example:9443/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = listen.parse().unwrap();
    let ca_pem = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = request(
            addr,
            client_config(&ca_pem, None),
            "GET",
            "/v1/health",
            &[],
            Vec::new(),
        )
        .await
        {
            up = r.status == hyper::StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up");

    // A code made by the CLI while the server runs works at once.
    let code = cli(&["enrol-code", "--data", d, "--device-name", "Room 1"]);
    // The address `serve` was told it is reached at, not the one `init` guessed.
    assert_eq!(code["url"], "https://sprig.acorns.example:9443");
    assert!(
        code["qr"]
            .as_str()
            .unwrap()
            .starts_with("sprig://enrol?url=https%3A%2F%2Fsprig.acorns.example%3A9443&")
    );
    let (_key, csr) = key_and_csr();
    let body = serde_json::json!({"code": code["code"], "device_name": "x", "csr_pem": csr, "app_version": "1"});
    let r = request(
        addr,
        client_config(&ca_pem, None),
        "POST",
        "/v1/enrol",
        &[],
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status,
        hyper::StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let list = cli(&["device", "list", "--data", d]);
    assert_eq!(list[0]["id"], r.json()["device_id"]);
    assert_eq!(list[0]["name"], "Room 1");

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve should stop cleanly on SIGINT: {status}"
    );
    // A public URL that is not one is refused before anything is served.
    let out = Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args([
            "serve",
            "--data",
            d,
            "--listen",
            &listen,
            "--public-url",
            "http://x/y",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--public-url must look like https://host"),
        "{err}"
    );
}

//! `sprig-server backup`: a copy of a data directory taken while its server runs is a data
//! directory a new server serves, and the tablets carry on against it with nothing lost.

use hyper::StatusCode;
use sha2::Digest as _;
use sprig_proto::{MemoryDocs, Unsynced};
use sprig_server::DataDir;

use crate::support::{TestServer, client_config, enrol, request};
use crate::sync::{record, sync_once};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_into_a_new_server() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let a = enrol(&server, "tablet A").await;
    let mut da = MemoryDocs::new();
    sync_once(&server, &a, &mut da, Unsynced::default()).await;
    record(&mut da, &staff, &child, "Planted beans");
    sync_once(&server, &a, &mut da, Unsynced::default()).await;
    let photo = b"a photo's bytes, stored before the backup".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    server.reference_media(&sha);
    let put = request(
        server.addr,
        client_config(&server.ca_pem, Some(&a)),
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", "photo")],
        photo.clone(),
    )
    .await
    .unwrap();
    assert_eq!(put.status, StatusCode::OK);

    // The backup, by the CLI, while the server serves.
    let keep = tempfile::tempdir().unwrap();
    let copy = keep.path().join("copy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(["backup", "--data"])
        .arg(server.data.root())
        .arg("--out")
        .arg(&copy)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["media_files"], 1, "{v}");
    // A second backup into the same place is refused.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(["backup", "--data"])
        .arg(server.data.root())
        .arg("--out")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!again.status.success());
    server.stop().await;

    // Restored: a new server on the copy. The tablet syncs as before, a new tablet gets
    // everything, and the photo is there.
    let restored = TestServer::serve_existing(DataDir::new(&copy), keep).await;
    record(&mut da, &staff, &child, "Watered them");
    sync_once(&restored, &a, &mut da, Unsynced::default()).await;
    let b = enrol(&restored, "tablet B").await;
    let mut db = MemoryDocs::new();
    sync_once(&restored, &b, &mut db, Unsynced::default()).await;
    let mut texts: Vec<String> = db.journals[&child]
        .entries()
        .iter()
        .map(|e| e.text.clone())
        .collect();
    texts.sort();
    assert_eq!(texts, ["Planted beans", "Watered them"]);
    let got = request(
        restored.addr,
        client_config(&restored.ca_pem, Some(&b)),
        "GET",
        &format!("/v1/media/{sha}"),
        &[],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!((got.status, got.body), (StatusCode::OK, photo));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(DataDir::new(&copy).ca_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    restored.stop().await;
}

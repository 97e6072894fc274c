//! Against a real `sprig-server` on loopback, in this process: enrolment pinned to the CA
//! fingerprint, a sync that brings the roster and journals, an upload acknowledged by hash and
//! then purged, and the refusals (wrong fingerprint, revoked device).

use std::path::Path;

use sha2::Digest;
use sprig_core::{Consent, Role};
use sprig_device::{Device, DeviceError, Enrolment, MediaStatus, Observation};
use sprig_server::store::DeviceStatus;
use sprig_server::{DataDir, ServeConfig, ServerStore, admin};

pub(crate) struct Server {
    _tmp: tempfile::TempDir,
    pub(crate) data: DataDir,
    pub(crate) url: String,
    pub(crate) fingerprint: String,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub(crate) fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("server"));
        let init = admin::init(&data, "Acorn Pre-School", None).unwrap();
        // The device pins the setting CA by fingerprint before it holds the CA certificate, so
        // the server must present the CA in its chain ([leaf, CA]); a server that sends only
        // its leaf cannot be told apart from an impostor and enrolment is refused.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(sprig_server::serve(
            listener,
            ServeConfig::new(data.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            _tmp: tmp,
            data,
            url: format!("https://127.0.0.1:{port}"),
            fingerprint: init.ca_fingerprint,
            rt,
            stop: Some(stop),
        }
    }

    pub(crate) fn code(&self) -> String {
        let store = self.data.open_store().unwrap();
        admin::enrol_code(
            &self.data,
            &store,
            "tablet",
            admin::DEFAULT_CODE_TTL,
            &sprig_server::By::cli(),
        )
        .unwrap()
        .code
    }

    pub(crate) fn enrolment(&self, code: String) -> Enrolment {
        Enrolment {
            server_url: self.url.clone(),
            code,
            ca_fingerprint: self.fingerprint.clone(),
            device_name: "tablet".into(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = &self.rt;
    }
}

fn sha_file(p: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn enrol_sync_upload_and_purge_against_a_real_server() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &store,
        "Test Child",
        staff.as_str(),
        Some("Ladybirds"),
        Consent::Yes,
        Some("2022-04-01"),
    )
    .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tablet");
    let enrolled = Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
    let status = Device::status_at(&dir).unwrap();
    assert!(status.enrolled);
    assert_eq!(
        status.device_id.as_deref(),
        Some(enrolled.device_id.as_str())
    );

    let mut device = Device::open(&dir).unwrap();
    let first = device.sync().unwrap();
    assert!(first.docs_changed >= 3, "{first:?}");

    let who = device.unlock(&staff, "2468").unwrap();
    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("p.jpg");
    std::fs::write(
        &photo,
        sprig_testkit::images::jpeg_with_exif(800, 600, 1, sprig_testkit::images::ByteOrder::Big),
    )
    .unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![child.clone()],
                text: "Found a snail".into(),
                photos: vec![photo],
                ..Observation::default()
            },
        )
        .unwrap();
    let sha = device.journal(&who, &child).unwrap()[0].media[0]
        .media
        .sha256;
    assert_eq!(device.status().unwrap().pending_media, 1);

    let second = device.sync().unwrap();
    assert_eq!(
        (second.media_uploaded, second.media_purged),
        (1, 1),
        "{second:?}"
    );
    assert!(second.media_failed.is_empty(), "{second:?}");
    let status = device.status().unwrap();
    assert_eq!(status.pending_media, 0);
    assert!(status.last_sync.is_some());
    let item = &device.journal(&who, &child).unwrap()[0];
    assert_eq!(item.media[0].status, MediaStatus::Purged);
    // The register counts the acknowledged upload off what the device reported at its hello,
    // so a manager does not see photos as pending that the tablet has already handed over.
    let registered = store.device(&enrolled.device_id).unwrap().unwrap();
    assert_eq!(registered.unsynced_media, 0);

    // The server's copy is the exact bytes the device hashed.
    let hex = sha.to_hex();
    let on_server = server.data.media().join(&hex[..2]).join(&hex);
    assert_eq!(sha_file(&on_server), hex);
    // And the server's journal holds the observation.
    let sprig_server::docs::AnyDoc::Journal(j) =
        sprig_server::docs::load_doc(&store, &sprig_proto::DocId::Journal(child.clone())).unwrap()
    else {
        panic!("not a journal")
    };
    assert!(j.entries().iter().any(|e| e.text == "Found a snail"));

    // Converged: nothing more to exchange.
    let third = device.sync().unwrap();
    assert_eq!(
        (third.docs_changed, third.media_uploaded),
        (0, 0),
        "{third:?}"
    );

    // A revoked device is refused with the server's code.
    store
        .set_device_status(&enrolled.device_id, DeviceStatus::Revoked)
        .unwrap();
    let err = device.sync().unwrap_err();
    assert!(
        matches!(&err, DeviceError::Server { code, .. } if code == "device_revoked")
            || matches!(err, DeviceError::Revoked { .. }),
        "{err:?}"
    );
}

#[test]
fn a_wrong_fingerprint_or_code_stores_nothing() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();

    let dir = tmp.path().join("wrong-ca");
    let mut e = server.enrolment(server.code());
    e.ca_fingerprint = format!("sha256:{}", "ab".repeat(32));
    let err = Device::enrol(&dir, &e).unwrap_err();
    assert!(matches!(err, DeviceError::CaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing was stored"), "{err}");
    assert!(!dir.join(sprig_device::DB_FILE).exists());

    let dir = tmp.path().join("wrong-code");
    let err = Device::enrol(&dir, &server.enrolment("AAAA-BBBB-CCCC".into())).unwrap_err();
    assert!(
        matches!(&err, DeviceError::Server { code, .. } if code == "enrol_code_invalid"),
        "{err:?}"
    );
    assert!(!dir.join(sprig_device::DB_FILE).exists());
}

#[test]
fn two_devices_recording_offline_on_one_child_converge() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        Some("2022-04-01"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut devices: Vec<Device> = ["a", "b"]
        .iter()
        .map(|n| {
            let dir = tmp.path().join(n);
            Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
            let mut d = Device::open(&dir).unwrap();
            d.sync().unwrap();
            d
        })
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        let who = d.unlock(&staff, "2468").unwrap();
        d.observe(
            &who,
            &Observation {
                children: vec![child.clone()],
                text: format!("offline note {i}"),
                ..Observation::default()
            },
        )
        .unwrap();
    }
    for d in &mut devices {
        d.sync().unwrap();
    }
    // The first device learns the second's note on its next sync.
    devices[0].sync().unwrap();
    for d in &devices {
        let who = d.unlock(&staff, "2468").unwrap();
        let mut texts: Vec<String> = d
            .journal(&who, &child)
            .unwrap()
            .into_iter()
            .map(|i| i.entry.text)
            .collect();
        texts.sort();
        assert_eq!(texts, ["offline note 0", "offline note 1"]);
    }
}

#[test]
fn cli_enrol_and_sync_keep_their_json_contracts() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tablet");
    let dir = dir.to_str().unwrap();
    let run = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-device"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let code = server.code();
    let enrolled = run(&[
        "enrol",
        "--data",
        dir,
        "--server",
        &server.url,
        "--code",
        &code,
        "--ca-fingerprint",
        &server.fingerprint,
        "--json",
    ]);
    assert_eq!(
        enrolled.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["device_id"]
    );
    let synced = run(&["sync", "--data", dir, "--json"]);
    for k in ["docs_changed", "media_uploaded", "media_purged"] {
        assert!(synced[k].is_u64(), "sync lacks {k}: {synced}");
    }
    let status = run(&["status", "--data", dir, "--json"]);
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["device_id"], enrolled["device_id"]);
    assert!(status["last_sync"].as_str().unwrap().ends_with('Z'));
}

/// Flips the bytes of every captured media item's chunks in place (same size, new hash), as
/// storage corruption would.
fn corrupt_captured_media(dir: &Path) {
    use sprig_store::KeyStore;
    let dd = sprig_device::DataDir::existing(dir).unwrap();
    let key = dd.keystore().load().unwrap().unwrap();
    let conn = rusqlite::Connection::open(dd.db_path()).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256;",
        hex::encode(key.expose_secret())
    ))
    .unwrap();
    let n = conn
        .execute(
            "UPDATE media_chunks SET data = zeroblob(length(data)) \
             WHERE media_id IN (SELECT id FROM media WHERE state = 'captured')",
            [],
        )
        .unwrap();
    assert!(n > 0);
}

#[test]
fn a_hash_mismatched_upload_keeps_the_copy_and_is_reported() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        Some("2022-04-01"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tablet");
    Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
    let mut device = Device::open(&dir).unwrap();
    device.sync().unwrap();
    let who = device.unlock(&staff, "2468").unwrap();
    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("p.jpg");
    std::fs::write(&photo, sprig_testkit::images::jpeg(640, 480)).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![child.clone()],
                text: "Stacked cups".into(),
                photos: vec![photo],
                ..Observation::default()
            },
        )
        .unwrap();
    drop(device);
    corrupt_captured_media(&dir);

    let mut device = Device::open(&dir).unwrap();
    let report = device.sync().unwrap();
    assert_eq!(
        (report.media_uploaded, report.media_purged),
        (0, 0),
        "{report:?}"
    );
    assert_eq!(report.media_failed.len(), 1, "{report:?}");
    assert!(
        report.media_failed[0].error.contains("hash_mismatch"),
        "{report:?}"
    );
    assert_eq!(
        device.status().unwrap().pending_media,
        1,
        "the copy is kept"
    );
    let item = &device.journal(&who, &child).unwrap()[0];
    assert_eq!(item.media[0].status, MediaStatus::Captured);
}

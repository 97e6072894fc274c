//! The app's commands on Tauri's mock runtime (`tauri::test`), invoked over IPC exactly as the
//! window invokes them, against a real `sprig-server` on loopback and a real encrypted store
//! (run under `scripts/with-keystore.sh`): enrolment and its refusals, the lock screen,
//! capture with photo bytes over IPC and the consent refusal, sync with upload and purge, the
//! auto-lock enforced in Rust, and a revoke turning into its full-screen state.

use std::time::Duration;

use serde_json::{Value, json};
use sprig_core::{Consent, Role};
use sprig_server::{DataDir, ServeConfig, admin};
use tauri::Manager;
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{INVOKE_KEY, MockRuntime, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;

struct Server {
    _tmp: tempfile::TempDir,
    data: DataDir,
    url: String,
    fingerprint: String,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("server"));
        let init = admin::init(&data, "Acorn Pre-School", None).unwrap();
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
        Self {
            _tmp: tmp,
            data,
            url: format!("https://127.0.0.1:{port}"),
            fingerprint: init.ca_fingerprint,
            rt,
            stop: Some(stop),
        }
    }

    fn code(&self) -> String {
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
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = &self.rt;
    }
}

struct App {
    _app: tauri::App<MockRuntime>,
    webview: tauri::WebviewWindow<MockRuntime>,
    _tmp: tempfile::TempDir,
}

impl App {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let app = mock_builder()
            .manage(sprig_app::Shell::new(tmp.path().join("tablet")))
            .invoke_handler(sprig_app::handler())
            .build(mock_context(noop_assets()))
            .unwrap();
        let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        Self {
            _app: app,
            webview,
            _tmp: tmp,
        }
    }

    fn shell(&self) -> tauri::State<'_, sprig_app::Shell> {
        self.webview.state::<sprig_app::Shell>()
    }

    fn invoke_body(
        &self,
        cmd: &str,
        body: InvokeBody,
        headers: &[(&str, &str)],
    ) -> Result<InvokeResponseBody, Value> {
        let mut h = tauri::http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                tauri::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        tauri::test::get_ipc_response(
            &self.webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body,
                headers: h,
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
    }

    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        self.invoke_body(cmd, InvokeBody::Json(args), &[])
            .map(|b| match b {
                InvokeResponseBody::Json(s) => serde_json::from_str(&s).unwrap(),
                InvokeResponseBody::Raw(r) => json!({ "raw_len": r.len() }),
            })
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err(&self, cmd: &str, args: Value) -> Value {
        match self.call(cmd, args) {
            Ok(v) => panic!("{cmd} should fail, gave {v}"),
            Err(e) => e,
        }
    }
}

#[test]
fn a_day_on_the_tablet_over_ipc() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let amara = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    admin::staff_add(&store, "Morgan Hale", Role::Manager, "1357", None).unwrap();
    let ada = admin::child_add(
        &store,
        "Ada Birchley",
        amara.as_str(),
        Some("Acorns"),
        Consent::Yes,
        None,
    )
    .unwrap();
    let bram = admin::child_add(
        &store,
        "Bram Coldwell",
        amara.as_str(),
        Some("Acorns"),
        Consent::Yes,
        None,
    )
    .unwrap();
    let dev = admin::child_add(
        &store,
        "Dev Elmsworth",
        amara.as_str(),
        Some("Oaks"),
        Consent::No,
        None,
    )
    .unwrap();
    let app = App::new();

    // Enrolment: the preview names the setting and checks the fingerprint; refusals have codes.
    assert_eq!(app.ok("app_status", json!({}))["phase"], "enrol");
    let p = app.ok(
        "preview_enrolment",
        json!({"server": server.url, "fingerprint": server.fingerprint}),
    );
    assert_eq!(p["matches"], true);
    assert_eq!(p["setting_name"], "Acorn Pre-School");
    let foreign = format!("sha256:{}", "ab".repeat(32));
    let p = app.ok(
        "preview_enrolment",
        json!({"server": server.url, "fingerprint": foreign}),
    );
    assert_eq!(p["matches"], false);
    assert_eq!(p["setting_name"], Value::Null);
    let e = app.err("enrol", json!({"server": server.url, "code": "AAAAA-AAAAA", "fingerprint": server.fingerprint, "device_name": "t"}));
    assert_eq!(e["code"], "enrol_code_invalid", "{e}");
    let e = app.err("enrol", json!({"server": server.url, "code": server.code(), "fingerprint": foreign, "device_name": "t"}));
    assert_eq!(e["code"], "ca_mismatch", "{e}");
    let code = server.code();
    let status = app.ok("enrol", json!({"server": server.url, "code": code, "fingerprint": server.fingerprint, "device_name": "Acorns tablet"}));
    assert_eq!(status["phase"], "locked", "{status}");
    assert_eq!(status["setting_name"], "Acorn Pre-School");
    let e = app.err("enrol", json!({"server": server.url, "code": code, "fingerprint": server.fingerprint, "device_name": "t"}));
    assert_eq!(e["code"], "already_enrolled", "{e}");

    // The lock screen: tiles, a wrong PIN (attempts left), then the right one.
    let tiles = app.ok("staff_tiles", json!({}));
    assert_eq!(tiles.as_array().unwrap().len(), 2);
    assert_eq!(tiles[0]["name"], "Amara Okafor");
    assert_eq!(tiles[0]["initials"], "AO");
    let e = app.err("children", json!({}));
    assert_eq!(e["code"], "auto_locked", "nothing before unlocking");
    let left = app.ok("app_status", json!({}))["pin_attempts_left"]
        .as_u64()
        .unwrap();
    let e = app.err("unlock", json!({"staff": amara.to_string(), "pin": "0000"}));
    assert_eq!(e["code"], "wrong_pin");
    assert_eq!(
        app.ok("app_status", json!({}))["pin_attempts_left"]
            .as_u64()
            .unwrap(),
        left - 1
    );
    let session = app.ok("unlock", json!({"staff": amara.to_string(), "pin": "2468"}));
    assert_eq!(session["name"], "Amara Okafor");
    assert_eq!(session["is_manager"], false);
    assert_eq!(app.ok("app_status", json!({}))["phase"], "unlocked");

    let children = app.ok("children", json!({}));
    assert_eq!(children.as_array().unwrap().len(), 3);
    assert_eq!(children[0]["is_key_child"], true);
    assert_eq!(children[0]["not_observed"], true);

    // Capture: a photo's bytes as the raw IPC body, then a group photo refused for Dev.
    let jpeg = sprig_testkit::images::jpeg(1200, 900);
    let staged = app
        .invoke_body(
            "stage_media",
            InvokeBody::Raw(jpeg.clone()),
            &[("x-sprig-kind", "photo")],
        )
        .unwrap();
    let InvokeResponseBody::Json(staged) = staged else {
        panic!("json")
    };
    let staged: Value = serde_json::from_str(&staged).unwrap();
    assert_eq!(staged["size"], jpeg.len());
    let media = staged["id"].as_str().unwrap().to_owned();
    let obs = |children: Vec<String>| {
        json!({"observation": {
        "children": children, "text": "Built a tower together", "areas": ["M", "physical-development"],
        "band": "three-and-four-year-olds", "coel": ["active-learning"], "next_steps": "Count the bricks",
        "media": [media], "draft": false}})
    };
    let e = app.err("observe", obs(vec![ada.to_string(), dev.to_string()]));
    assert_eq!(e["code"], "consent_missing", "{e}");
    assert_eq!(e["child"], dev.to_string());
    assert!(e["message"].as_str().unwrap().contains("Dev Elmsworth"));
    let id = app.ok("observe", obs(vec![ada.to_string(), bram.to_string()]));
    let e = app.err("observe", obs(vec![ada.to_string()]));
    assert_eq!(
        e["code"], "invalid_input",
        "the staged photo was used up: {e}"
    );

    let journal = app.ok("journal", json!({"child": ada.to_string()}));
    let entry = &journal[0];
    assert_eq!(entry["id"], id);
    assert_eq!(entry["with_children"], json!(["Bram Coldwell"]));
    assert_eq!(
        entry["areas"],
        json!(["physical-development", "mathematics"])
    );
    assert_eq!(entry["media"][0]["state"], "captured");
    let sha = entry["media"][0]["sha256"].as_str().unwrap().to_owned();
    let thumb = app.ok("thumbnail", json!({"sha256": sha}));
    assert!(thumb["raw_len"].as_u64().unwrap() > 100);

    // Sync: uploaded then purged; the photo is then streamed from the server into memory.
    let s = app.ok("sync_now", json!({}));
    assert_eq!(s["last_error"], Value::Null, "{s}");
    assert_eq!(s["pending_media"], 0);
    assert_eq!(s["online"], true);
    let journal = app.ok("journal", json!({"child": bram.to_string()}));
    assert_eq!(journal[0]["media"][0]["state"], "purged");
    let full = app.ok("media", json!({"sha256": sha}));
    assert!(full["raw_len"].as_u64().unwrap() > 1000);

    // Edit keeps the earlier text; a reply lands in one child's journal.
    app.ok("edit", json!({"entry": id, "change": {"text": "Built a tall tower together", "next_steps": "", "areas": ["M"], "band": null, "coel": []}}));
    let revs = app.ok("revisions", json!({"child": ada.to_string(), "entry": id}));
    assert_eq!(revs.as_array().unwrap().len(), 1);
    app.ok(
        "reply",
        json!({"entry": id, "child": bram.to_string(), "text": "Great teamwork"}),
    );
    let journal = app.ok("journal", json!({"child": bram.to_string()}));
    assert_eq!(journal[0]["replies"][0]["author_name"], "Amara Okafor");
    let e = app.err("coverage", json!({"days": 30}));
    assert_eq!(e["code"], "rule", "coverage is for managers");

    // "Done" syncs what is waiting, then locks.
    let done = app.ok("done", json!({}));
    assert_eq!(done["synced"], true, "{done}");
    assert_eq!(done["pending_media"], 0);
    assert_eq!(app.ok("app_status", json!({}))["phase"], "locked");

    // The inactivity lock is enforced in Rust, whatever the window shows.
    app.ok("unlock", json!({"staff": amara.to_string(), "pin": "2468"}));
    app.shell()
        .set_inactivity_for_tests(Duration::from_millis(200));
    app.ok("touch", json!({}));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.err("children", json!({}))["code"], "auto_locked");
    assert_eq!(app.ok("app_status", json!({}))["phase"], "locked");

    // The watch: the call that opens the connection says "sync" at once (nothing was
    // announced to this tablet while none was open); notices of this tablet's own last sync
    // may still come, then it goes quiet; a manager's change on the server (a new child) ends
    // the next wait with "sync now", and the sync brings it.
    assert_eq!(app.ok("wait_for_changes", json!({"timeout_secs": 1})), true);
    let mut quiet = false;
    for _ in 0..5 {
        if app.ok("wait_for_changes", json!({"timeout_secs": 2})) == false {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "the watch never went quiet");
    let esme = admin::child_add(
        &store,
        "Esme Greyholt",
        amara.as_str(),
        None,
        Consent::Yes,
        None,
    )
    .unwrap();
    let mut heard = false;
    for _ in 0..6 {
        if app.ok("wait_for_changes", json!({"timeout_secs": 10})) == true {
            heard = true;
            break;
        }
    }
    assert!(heard, "the server's notice of the new child never came");
    assert_eq!(app.ok("sync_now", json!({}))["last_error"], Value::Null);
    app.ok("unlock", json!({"staff": amara.to_string(), "pin": "2468"}));
    let children = app.ok("children", json!({}));
    assert!(
        children
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == esme.to_string()),
        "{children}"
    );
    app.ok("lock", json!({}));

    // A revoke made on the server becomes the full-screen state at the next sync.
    let device_id = app.ok("app_status", json!({}))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin::device_lifecycle(
        &store,
        &device_id,
        admin::Lifecycle::Revoke,
        &sprig_server::By::cli(),
    )
    .unwrap();
    let s = app.ok("sync_now", json!({}));
    assert_eq!(s["last_error"], "device_revoked", "{s}");
    let status = app.ok("app_status", json!({}));
    assert_eq!(status["phase"], "blocked");
    assert_eq!(status["blocked"]["kind"], "revoked");
}

#[test]
fn a_tablet_that_is_not_enrolled_offers_enrolment_and_parses_links() {
    let app = App::new();
    let status = app.ok("app_status", json!({}));
    assert_eq!(status["phase"], "enrol");
    assert_eq!(app.ok("staff_tiles", json!({})), json!([]));
    assert_eq!(app.ok("sync_now", json!({}))["last_error"], "not_set_up");
    let link = sprig_app::dto::parse_enrol_link(
        "sprig://enrol?url=https%3A%2F%2Flocalhost%3A8443&code=7KQ4M-2XJ9D&fp=sha256%3Aabc",
    )
    .unwrap();
    assert_eq!(link.server, "https://localhost:8443");
    assert_eq!(link.code, "7KQ4M-2XJ9D");
    assert_eq!(link.fingerprint, "sha256:abc");
    assert!(sprig_app::dto::parse_enrol_link("https://example.org").is_none());
}

//! The `sprig-device` command's contracts: `--json` prints one JSON value with the documented
//! keys; errors exit non-zero with one line on stderr.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{PIN, seeded};

fn sprig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sprig-device"))
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let out = sprig(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "one JSON value: {text}");
    serde_json::from_str(&text).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = sprig(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn observe_journal_and_status_keep_their_json_contracts() {
    let s = seeded();
    let dir = s.dir.to_str().unwrap();
    let staff = s.staff.to_string();
    let child = s.child(0).to_string();

    let status = ok_json(&["status", "--data", dir, "--json"]);
    for k in [
        "enrolled",
        "device_id",
        "pending_media",
        "last_sync",
        "documents",
    ] {
        assert!(status.get(k).is_some(), "status lacks {k}: {status}");
    }
    assert_eq!(status["enrolled"], false);
    assert_eq!(status["documents"], 2);

    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("p.jpg");
    std::fs::write(&photo, sprig_testkit::images::jpeg(400, 300)).unwrap();
    let observed = ok_json(&[
        "observe",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--child",
        &child,
        "--text",
        "Built a den",
        "--photo",
        photo.to_str().unwrap(),
        "--area",
        "mathematics",
        "--next-step",
        "Build a bigger one",
        "--json",
    ]);
    assert_eq!(keys(&observed), ["id"]);
    let id = observed["id"].as_str().unwrap();

    let journal = ok_json(&[
        "journal", "--data", dir, "--staff", &staff, "--pin", PIN, "--child", &child, "--json",
    ]);
    let items = journal.as_array().unwrap();
    assert_eq!(items.len(), 1);
    let e = &items[0];
    for k in ["id", "children", "author", "created_at", "text", "media"] {
        assert!(e.get(k).is_some(), "journal item lacks {k}: {e}");
    }
    assert_eq!(e["id"], id);
    assert_eq!(e["children"], serde_json::json!([child]));
    assert_eq!(e["author"], staff.as_str());
    assert_eq!(e["text"], "Built a den");
    assert_eq!(e["areas"], serde_json::json!(["mathematics"]));
    let created = e["created_at"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.contains('T'),
        "RFC 3339 UTC: {created}"
    );
    let m = &e["media"][0];
    assert_eq!(m["kind"], "photo");
    assert_eq!(m["state"], "captured");
    assert_eq!(m["sha256"].as_str().unwrap().len(), 64);

    let status = ok_json(&["status", "--data", dir, "--json"]);
    assert_eq!(status["pending_media"], 1);
    assert_eq!(status["documents"], 3);
    assert_eq!(status["last_sync"], Value::Null);
}

#[test]
fn refusals_are_one_line_on_stderr_with_a_failing_exit() {
    let s = seeded();
    let dir = s.dir.to_str().unwrap();
    let staff = s.staff.to_string();
    let child = s.child(0).to_string();
    let err = fails(&[
        "observe", "--data", dir, "--staff", &staff, "--pin", "0000", "--child", &child, "--text",
        "x", "--json",
    ]);
    assert!(err.contains("wrong PIN"), "{err}");
    let err = fails(&[
        "observe", "--data", dir, "--staff", &staff, "--pin", PIN, "--child", &child, "--text",
        "x", "--area", "knitting",
    ]);
    assert!(err.contains("mathematics"), "lists the known areas: {err}");
    let err = fails(&["sync", "--data", dir, "--json"]);
    assert!(err.contains("not enrolled"), "{err}");
    let nowhere = s.dir.join("missing");
    let err = fails(&[
        "journal",
        "--data",
        nowhere.to_str().unwrap(),
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--child",
        &child,
    ]);
    assert!(err.contains("enrol it first"), "{err}");
    // Status of a directory that was never set up creates nothing.
    let status = ok_json(&["status", "--data", nowhere.to_str().unwrap(), "--json"]);
    assert_eq!(status["enrolled"], false);
    assert!(!nowhere.exists());
}

#[test]
fn observe_takes_drafts_age_bands_characteristics_and_short_area_forms() {
    let s = seeded();
    let dir = s.dir.to_str().unwrap();
    let staff = s.staff.to_string();
    let child = s.child(0).to_string();
    let out = sprig(&[
        "observe",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--child",
        &child,
        "--text",
        "Counted the ducks",
        "--area",
        "M",
        "--area",
        "cl",
        "--draft",
        "--band",
        "three-and-four-year-olds",
        "--coel",
        "active-learning",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = sprig(&[
        "journal", "--data", dir, "--staff", &staff, "--pin", PIN, "--child", &child, "--json",
    ]);
    let v: Value = serde_json::from_slice(&journal.stdout).unwrap();
    let e = &v[0];
    assert_eq!(e["status"], "draft");
    assert_eq!(e["band"], "three-and-four-year-olds");
    assert_eq!(e["coel"], serde_json::json!(["active-learning"]));
    assert_eq!(
        e["areas"],
        serde_json::json!(["communication-and-language", "mathematics"])
    );
    let err = fails(&[
        "observe", "--data", dir, "--staff", &staff, "--pin", PIN, "--child", &child, "--text",
        "x", "--band", "toddlers",
    ]);
    assert!(err.contains("birth-to-three"), "lists the bands: {err}");
}

#[test]
fn the_app_commands_keep_their_json_contracts() {
    let s = seeded();
    crate::app::with_manager(&s);
    let contribution = crate::app::parent_contribution(&s, "We planted beans").to_string();
    let dir = s.dir.to_str().unwrap();
    let staff = s.staff.to_string();
    let manager = s.fx.manager.to_string();
    let child = s.child(0).to_string();
    let auth = |who: &str| -> Vec<String> {
        ["--data", dir, "--staff", who, "--pin", PIN]
            .iter()
            .map(|x| (*x).to_owned())
            .collect()
    };
    let run = |cmd: &str, who: &str, extra: &[&str]| -> Value {
        let mut args: Vec<String> = vec![cmd.to_owned()];
        args.extend(auth(who));
        args.extend(extra.iter().map(|x| (*x).to_owned()));
        args.push("--json".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok_json(&refs)
    };

    let children = run("children", &staff, &[]);
    let list = children.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], child.as_str(), "key children first");
    for k in [
        "id",
        "name",
        "room",
        "is_key_child",
        "last_observed_at",
        "not_observed",
        "photo_consent",
        "pending",
    ] {
        assert!(
            list[0].get(k).is_some(),
            "children item lacks {k}: {}",
            list[0]
        );
    }
    assert_eq!(list[0]["is_key_child"], true);
    assert_eq!(list[0]["last_observed_at"], Value::Null);
    assert_eq!(list[0]["pending"], 1);

    let id = ok_json(&[
        "observe",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--child",
        &child,
        "--text",
        "Draft text",
        "--draft",
        "--json",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let published = run("publish", &staff, &["--entry", &id]);
    assert_eq!(
        published,
        serde_json::json!({"id": id, "status": "published"})
    );
    let edited = run(
        "edit",
        &staff,
        &["--entry", &id, "--text", "Corrected text"],
    );
    assert_eq!(keys(&edited), ["edited", "id"]);
    let replied = run("reply", &staff, &["--entry", &id, "--text", "Well done"]);
    assert_eq!(keys(&replied), ["entry", "id"]);
    let journal = run("journal", &staff, &["--child", &child]);
    let e = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap();
    assert_eq!(e["text"], "Corrected text");
    assert_eq!(e["status"], "published");
    assert_eq!(e["replies"][0]["text"], "Well done");
    assert!(e["edited_at"].is_string());

    let pending = run("pending", &staff, &[]);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["id"], contribution.as_str());
    assert_eq!(pending[0]["author_kind"], "parent");
    assert_eq!(pending[0]["status"], "pending");
    let rejected = run(
        "reject",
        &staff,
        &[
            "--entry",
            &contribution,
            "--reason",
            "Please send one of Ada alone",
        ],
    );
    assert_eq!(rejected["status"], "rejected");
    assert!(run("pending", &staff, &[]).as_array().unwrap().is_empty());
    let err = fails(&[
        "approve",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--entry",
        &contribution,
    ]);
    assert!(err.contains("already been reviewed"), "{err}");

    let coverage = run("coverage", &manager, &["--days", "7"]);
    assert_eq!(
        keys(&coverage),
        [
            "days",
            "not_observed",
            "pending_uploads",
            "per_area",
            "per_child",
            "per_key_worker",
            "since",
            "unsynced_docs"
        ]
    );
    assert_eq!(coverage["days"], 7);
    assert_eq!(coverage["per_area"].as_array().unwrap().len(), 7);
    assert_eq!(coverage["per_area"][0]["short"], "CL");
    assert_eq!(coverage["not_observed"].as_array().unwrap().len(), 2);
    let default = run("coverage", &manager, &[]);
    assert_eq!(default["days"], 30);
    let err = fails(&[
        "coverage", "--data", dir, "--staff", &staff, "--pin", PIN, "--json",
    ]);
    assert!(err.contains("only a manager"), "{err}");
}

#[test]
fn the_app_commands_refuse_with_one_line() {
    let s = seeded();
    let dir = s.dir.to_str().unwrap();
    let staff = s.staff.to_string();
    let child = s.child(0).to_string();
    let id = ok_json(&[
        "observe",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--child",
        &child,
        "--text",
        "Read a story",
        "--json",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = fails(&[
        "approve", "--data", dir, "--staff", &staff, "--pin", PIN, "--entry", &id,
    ]);
    assert!(err.contains("only parent contributions"), "{err}");
    let err = fails(&[
        "reject", "--data", dir, "--staff", &staff, "--pin", PIN, "--entry", &id, "--reason", "",
    ]);
    assert!(err.contains("reason"), "{err}");
    let missing = sprig_core::EntryId::new_random().to_string();
    let err = fails(&[
        "publish", "--data", dir, "--staff", &staff, "--pin", PIN, "--entry", &missing,
    ]);
    assert!(err.contains("no longer exists"), "{err}");
    let err = fails(&[
        "edit", "--data", dir, "--staff", &staff, "--pin", "9999", "--entry", &id, "--text", "x",
    ]);
    assert!(err.contains("wrong PIN"), "{err}");
    let err = fails(&[
        "reply",
        "--data",
        dir,
        "--staff",
        &staff,
        "--pin",
        PIN,
        "--entry",
        "not-an-id",
        "--text",
        "x",
    ]);
    assert!(err.contains("entry"), "{err}");
    let err = fails(&[
        "coverage", "--data", dir, "--staff", &staff, "--pin", PIN, "--days", "0",
    ]);
    assert!(!err.is_empty());
}

//! The console's roster, staff, parents, policy and audit-log endpoints over real TLS, as a
//! signed-in manager: what each lists and changes (read back from the roster the tablets
//! sync), its refusals, the fresh second factor of unlinking a parent, and the audit log with
//! the manager and their client.

use hyper::StatusCode;
use serde_json::{Value, json};
use sprig_core::{ChildId, Consent, StaffId};
use sprig_proto::DocId;
use sprig_server::ServerStore;
use sprig_server::docs::{AnyDoc, load_doc};

use crate::console::{MANAGER, PASSWORD_M, enrol_from_console, first_sign_in, staffed};
use crate::portal::{Client, PASSWORD_A};
use crate::support::{Reply, TestServer};

fn status(r: &Reply, want: StatusCode) -> Value {
    assert_eq!(r.status, want, "{}", String::from_utf8_lossy(&r.body));
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn roster(store: &dyn ServerStore) -> sprig_core::Roster {
    let AnyDoc::Roster(r) = load_doc(store, &DocId::Roster).unwrap() else {
        panic!("not a roster")
    };
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_lists_and_changes_children_and_staff() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut c = Client::new(&server);
    first_sign_in(&mut c, MANAGER, PASSWORD_M).await;

    let children = status(
        &c.call("GET", "/api/v1/admin/children", None).await,
        StatusCode::OK,
    );
    let names: Vec<&str> = children
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Bea Quinn"]);
    assert_eq!(children[0]["photo_consent"], "unanswered");
    assert_eq!(children[1]["photo_consent"], "yes");
    assert_eq!(children[0]["room"], "Ladybirds");
    assert_eq!(children[0]["parents"], json!([s.fam.parent_a.to_string()]));
    let rooms = status(
        &c.call("GET", "/api/v1/admin/rooms", None).await,
        StatusCode::OK,
    );
    assert_eq!(
        rooms,
        json!([{"id": rooms[0]["id"], "name": "Ladybirds", "children": 2}])
    );

    // Add a child; change their room, key worker, consent and leaving day.
    let added = status(
        &c.call(
            "POST",
            "/api/v1/admin/children",
            Some(
                json!({"name": "Cy Rowe", "key_worker": s.fam.staff.to_string(),
                        "room": "Owls", "date_of_birth": "2023-01-02"}),
            ),
        )
        .await,
        StatusCode::CREATED,
    );
    let cy = added["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            &added["room"],
            &added["date_of_birth"],
            &added["photo_consent"]
        ),
        (&json!("Owls"), &json!("2023-01-02"), &json!("unanswered"))
    );
    let changed = status(
        &c.call(
            "PATCH",
            &format!("/api/v1/admin/children/{cy}"),
            Some(
                json!({"room": "Ladybirds", "key_worker": s.manager.to_string(),
                        "photo_consent": "no", "leaving": "2099-08-31"}),
            ),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            &changed["room"],
            &changed["key_worker"],
            &changed["photo_consent"],
            &changed["leaving"],
            &changed["status"]
        ),
        (
            &json!("Ladybirds"),
            &json!(s.manager.to_string()),
            &json!("no"),
            &json!("2099-08-31"),
            &json!("attending")
        )
    );
    // What the tablets sync says the same.
    let r = roster(&server.store());
    let child = r.child(&ChildId::parse(&cy).unwrap()).unwrap();
    assert_eq!(child.key_worker, s.manager);
    assert_eq!(child.photo_consent, Consent::No);
    assert_eq!(child.leaving.as_deref(), Some("2099-08-31"));
    // Refusals, each with its own answer.
    for (body, want, code) in [
        (json!({}), StatusCode::BAD_REQUEST, "bad_request"),
        (
            json!({"leaving": "31/08/2027"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"photo_consent": "maybe"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"key_worker": StaffId::new_random().to_string()}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let r = c
            .call(
                "PATCH",
                &format!("/api/v1/admin/children/{cy}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!((r.status, r.code().as_str()), (want, code), "{body}");
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/admin/children/{}", ChildId::new_random()),
            Some(json!({"room": "Owls"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c
        .call(
            "POST",
            "/api/v1/admin/children",
            Some(json!({"name": "No Keyworker"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A leaving day come marks the child left at once.
    let left = status(
        &c.call(
            "PATCH",
            &format!("/api/v1/admin/children/{cy}"),
            Some(json!({"leaving": "2020-08-31"})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(left["status"], "left");

    // Staff: add a practitioner, deactivate them; the last manager is kept.
    let staff = status(
        &c.call("GET", "/api/v1/admin/staff", None).await,
        StatusCode::OK,
    );
    assert_eq!(staff.as_array().unwrap().len(), 3);
    let manager_row = staff
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == s.manager.to_string())
        .unwrap();
    assert_eq!(manager_row["email"], MANAGER);
    let jo = status(
        &c.call(
            "POST",
            "/api/v1/admin/staff",
            Some(json!({"name": "Jo Pike", "role": "practitioner", "pin": "4321"})),
        )
        .await,
        StatusCode::CREATED,
    );
    let jo_id = jo["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&jo["active"], &jo["has_pin"]),
        (&json!(true), &json!(true))
    );
    let r = c
        .call(
            "POST",
            "/api/v1/admin/staff",
            Some(json!({"name": "Bad Pin", "role": "practitioner", "pin": "12"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("4 to 8 digits")
    );
    let r = c
        .call(
            "POST",
            "/api/v1/admin/staff",
            Some(json!({"name": "Dup", "role": "manager", "pin": "1234",
                        "email": MANAGER, "password": "another long pass phrase"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "email_in_use")
    );
    let off = status(
        &c.call(
            "PATCH",
            &format!("/api/v1/admin/staff/{jo_id}"),
            Some(json!({"deactivate": true})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(off["active"], false);
    assert!(
        !roster(&server.store())
            .staff(&StaffId::parse(&jo_id).unwrap())
            .unwrap()
            .active
    );
    let r = c
        .call(
            "PATCH",
            &format!("/api/v1/admin/staff/{}", s.manager),
            Some(json!({"role": "practitioner"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "last_manager")
    );

    // Every change is the manager's in the audit log, with where they asked from.
    let log = status(
        &c.call("GET", "/api/v1/admin/audit?action=staff_set", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["actor"], format!("staff:{}", s.manager));
    assert!(
        log[0]["client"].as_str().unwrap().starts_with("127.0.0.1"),
        "{log}"
    );
    assert!(log[0]["detail"].as_str().unwrap().contains(&jo_id));
    let about_cy = status(
        &c.call("GET", &format!("/api/v1/admin/audit?child={cy}"), None)
            .await,
        StatusCode::OK,
    );
    let actions: Vec<&str> = about_cy
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["child_set", "child_set", "child_add"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_are_invited_linked_and_unlinked_with_a_fresh_code() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut c = Client::new(&server);
    let mut app = first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let child_b = s.fam.child_b.to_string();
    let inv = status(
        &c.call(
            "POST",
            "/api/v1/admin/parents",
            Some(json!({"name": "Gran Quinn", "email": "gran@example.org",
                        "children": [child_b]})),
        )
        .await,
        StatusCode::CREATED,
    );
    let gran = inv["id"].as_str().unwrap().to_owned();
    let first = inv["link"].as_str().unwrap().to_owned();
    assert!(first.contains("/#/invite/"), "{first}");
    let r = c
        .call(
            "POST",
            "/api/v1/admin/parents",
            Some(json!({"name": "Ghost", "email": "ghost@example.org",
                        "children": [ChildId::new_random().to_string()]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let parents = status(
        &c.call("GET", "/api/v1/admin/parents", None).await,
        StatusCode::OK,
    );
    let row = parents
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == gran.as_str())
        .unwrap();
    assert_eq!(
        (&row["email"], &row["invited"], &row["children"]),
        (&json!("gran@example.org"), &json!(true), &json!([child_b]))
    );
    // A new link replaces the first, which stops working.
    let again = status(
        &c.call(
            "POST",
            &format!("/api/v1/admin/parents/{gran}/invitation"),
            Some(json!({})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_ne!(again["link"], first.as_str());
    let token = |link: &str| link.rsplit('/').next().unwrap().to_owned();
    let mut anon = Client::new(&server);
    let r = anon
        .call(
            "GET",
            &format!("/api/v1/invitations/{}", token(&first)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = anon
        .call(
            "GET",
            &format!(
                "/api/v1/invitations/{}",
                token(again["link"].as_str().unwrap())
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Someone who has a password is not invited again.
    let r = c
        .call(
            "POST",
            &format!("/api/v1/admin/parents/{}/invitation", s.fam.parent_a),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Link parent A to Bea too; then unlinking takes a fresh code.
    let parent_a = s.fam.parent_a.to_string();
    let linked = status(
        &c.call(
            "POST",
            &format!("/api/v1/admin/parents/{parent_a}/links"),
            Some(json!({"child_id": child_b})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(linked["children"].as_array().unwrap().len(), 2);
    let mut p = Client::new(&server);
    p.onboard("a@example.com", PASSWORD_A).await;
    let journal = format!("/api/v1/children/{child_b}/journal");
    assert_eq!(p.call("GET", &journal, None).await.status, StatusCode::OK);
    let unlink = format!("/api/v1/admin/parents/{parent_a}/links/{child_b}");
    let r = c.call("DELETE", &unlink, Some(json!({}))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "fresh_code_required")
    );
    let r = c
        .call("DELETE", &unlink, Some(json!({"totp": "000000"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let code = app.fresh().await;
    let row = status(
        &c.call("DELETE", &unlink, Some(json!({ "totp": code })))
            .await,
        StatusCode::OK,
    );
    assert_eq!(row["children"], json!([s.fam.child_a.to_string()]));
    // From the parent's next request, that journal is not theirs.
    assert_eq!(
        p.call("GET", &journal, None).await.status,
        StatusCode::NOT_FOUND
    );
    let code = app.fresh().await;
    let r = c
        .call("DELETE", &unlink, Some(json!({ "totp": code })))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let actions: Vec<String> = server
        .store()
        .audit_log(50)
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == format!("staff:{}", s.manager))
        .map(|e| e.action)
        .collect();
    for a in [
        "parent_invite",
        "parent_reinvite",
        "parent_link",
        "parent_unlink",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_shown_checked_and_set_and_the_audit_log_exported() {
    let server = TestServer::start().await;
    let _s = staffed(&server).await;
    let mut c = Client::new(&server);
    first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let p = status(
        &c.call("GET", "/api/v1/admin/policy", None).await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            &p["lock_after_secs"],
            &p["wipe_after_secs"],
            &p["max_pin_failures"],
            &p["inactivity_lock_secs"],
            &p["not_observed_days"],
            &p["review_gate"],
            &p["allow_networks"]
        ),
        (
            &json!(43_200),
            &json!(7_776_000),
            &json!(10),
            &json!(120),
            &json!(14),
            &json!(false),
            &json!([])
        )
    );
    let old_version = p["agreement_version"].as_str().unwrap().to_owned();
    let mut new = p.clone();
    new["lock_after_secs"] = json!(3_600);
    new["inactivity_lock_secs"] = json!(300);
    new["not_observed_days"] = json!(7);
    new["allow_networks"] = json!(["127.0.0.0/8", " 10.0.0.0/8 "]);
    new["agreement_text"] = json!("Please do not share what you see here.");
    new["agreement_version"] = json!("2026-12-02");
    let set = status(
        &c.call("PUT", "/api/v1/admin/policy", Some(new.clone()))
            .await,
        StatusCode::OK,
    );
    assert_eq!(set["allow_networks"], json!(["127.0.0.0/8", "10.0.0.0/8"]));
    assert_eq!(set["inactivity_lock_secs"], 300);
    // The tablets' setting document carries the inactivity lock and not-observed days.
    let AnyDoc::Setting(doc) = load_doc(&server.store(), &DocId::Setting).unwrap() else {
        panic!("not the setting")
    };
    let pol = doc.policies();
    assert_eq!(
        (
            pol.inactivity_lock_secs,
            pol.not_observed_days,
            pol.lock_after_secs
        ),
        (300, 7, 3_600)
    );
    // Parents are asked to agree to the new version.
    let mut parent = Client::new(&server);
    parent.sign_in("a@example.com", PASSWORD_A).await;
    let a = parent.call("GET", "/api/v1/agreement", None).await.json();
    assert_eq!(a["version"], "2026-12-02");
    assert_ne!(a["version"], old_version.as_str());
    // Refusals leave everything as it was.
    for (field, value) in [
        ("lock_after_secs", json!(9_999_999_999_u64)),
        ("inactivity_lock_secs", json!(1)),
        ("not_observed_days", json!(0)),
        ("allow_networks", json!(["not a network"])),
        ("review_gate", json!(true)),
        ("agreement_text", json!("")),
    ] {
        let mut bad = set.clone();
        bad[field] = value;
        let r = c.call("PUT", "/api/v1/admin/policy", Some(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    let mut same_version = set.clone();
    same_version["agreement_text"] = json!("A quietly changed agreement.");
    let r = c
        .call("PUT", "/api/v1/admin/policy", Some(same_version))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("new version")
    );
    assert_eq!(
        status(
            &c.call("GET", "/api/v1/admin/policy", None).await,
            StatusCode::OK
        ),
        set
    );

    // The audit log as CSV: an attachment, never cached, the export itself audited.
    let r = c
        .call("GET", "/api/v1/admin/audit.csv?action=policy_set", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = String::from_utf8(r.body).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "at,actor,client,device,action,detail");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains(",policy_set,"), "{csv}");
    let r = c
        .call("GET", "/api/v1/admin/audit?since=yesterday", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let exports = status(
        &c.call("GET", "/api/v1/admin/audit?action=audit_export", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(exports.as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custody_records_go_into_the_tablets_log() {
    let server = TestServer::start().await;
    let _s = staffed(&server).await;
    let mut c = Client::new(&server);
    first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let device = enrol_from_console(&mut c, &server, "Room 1 tablet").await;
    let path = format!("/api/v1/admin/devices/{device}/custody");
    let out = status(
        &c.call(
            "POST",
            &path,
            Some(json!({"event": "checked_out", "note": "Kim, garden trip"})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_eq!(out["action"], "custody_checked_out");
    status(
        &c.call("POST", &path, Some(json!({"event": "returned"})))
            .await,
        StatusCode::CREATED,
    );
    for (body, want) in [
        (json!({"event": "lost"}), StatusCode::BAD_REQUEST),
        (
            json!({"event": "returned", "note": "x".repeat(201)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"event": "returned", "note": "two\nlines"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(c.call("POST", &path, Some(body)).await.status, want);
    }
    let r = c
        .call(
            "POST",
            "/api/v1/admin/devices/no-such-tablet/custody",
            Some(json!({"event": "returned"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let log = status(
        &c.call("GET", &format!("/api/v1/admin/audit?device={device}"), None)
            .await,
        StatusCode::OK,
    );
    let custody: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("custody_"))
        .map(|e| (e["action"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        custody,
        [
            ("custody_returned", ""),
            ("custody_checked_out", "note=Kim, garden trip")
        ]
    );
    server.stop().await;
}

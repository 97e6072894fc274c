//! Enrolment over real TLS: the happy path and every refusal, each with its own code and no
//! state change.

use hyper::StatusCode;
use sprig_server::ServerStore;
use sprig_server::admin::{code_hash, normalise_code};
use sprig_server::store::EnrolCode;

use crate::support::{TestServer, client_config, key_and_csr, post_enrol, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_issues_a_client_certificate_from_the_setting_ca() {
    let server = TestServer::start().await;
    let code = server.enrol_code("Room 1 tablet");
    let (_key, csr) = key_and_csr();
    // Typed sloppily: lower case, no hyphen.
    let typed = code.replace('-', "").to_lowercase();
    let r = post_enrol(&server, &typed, &csr).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    let mut keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ca_pem", "certificate_pem", "device_id"]);
    let id = j["device_id"].as_str().unwrap();
    assert_eq!(j["ca_pem"].as_str().unwrap(), server.ca_pem);

    // The certificate names the device and is for client authentication only.
    let pem = j["certificate_pem"].as_str().unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, id);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(format!("{:?}", san.value).contains(&format!("urn:sprig:device:{id}")));
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let years = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert_eq!(years, 5);

    // Registered under the manager's name, with the certificate's fingerprint.
    let devices = server.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, id);
    assert_eq!(devices[0].name, "Room 1 tablet");
    assert_eq!(
        devices[0].cert_fingerprint,
        sprig_server::ca::fingerprint(&der)
    );
    assert!(
        server
            .store()
            .audit_log(10)
            .unwrap()
            .iter()
            .any(|e| e.action == "enrol" && e.device.as_deref() == Some(id))
    );

    // The admin CLI reads the register while the server runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args([
            "device",
            "list",
            "--json",
            "--data",
            server.data.root().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &list[0];
    for k in [
        "id",
        "name",
        "status",
        "last_seen",
        "last_sync",
        "unsynced_media",
    ] {
        assert!(row.get(k).is_some(), "missing {k}: {row}");
    }
    assert_eq!(row["id"], id);
    assert_eq!(row["status"], "active");
    assert!(row["last_sync"].is_null());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_and_used_codes_are_refused_distinctly() {
    let server = TestServer::start().await;
    let (_key, csr) = key_and_csr();

    let r = post_enrol(&server, "ZZZZZ-ZZZZZ", &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "enrol_code_invalid")
    );
    let r = post_enrol(&server, "not a code", &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "enrol_code_invalid")
    );

    let expired = "ABCDE-FGHJK";
    server
        .store()
        .insert_enrol_code(&EnrolCode {
            code_hash: code_hash(&normalise_code(expired).unwrap()),
            device_name: "old".into(),
            created_at: 0,
            expires_at: sprig_server::admin::now_ms() - 1,
        })
        .unwrap();
    let r = post_enrol(&server, expired, &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::GONE, "enrol_code_expired")
    );
    assert!(!r.json()["message"].as_str().unwrap().is_empty());

    let code = server.enrol_code("tablet");
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::GONE, "enrol_code_used")
    );
    assert_eq!(
        server.devices().len(),
        1,
        "only the valid enrolment registered a device"
    );

    // A bad CSR does not use up the code.
    let code = server.enrol_code("tablet 2");
    let r = post_enrol(
        &server,
        &code,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(r.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_throttled_without_using_the_code() {
    let server = TestServer::start().await;
    let code = server.enrol_code("tablet");
    let (_key, csr) = key_and_csr();
    for i in 0..5 {
        let r = post_enrol(&server, &format!("ZZZZZ-ZZZZ{i}"), &csr).await;
        assert_eq!(r.code(), "enrol_code_invalid");
    }
    // The sixth try within a minute is refused before the code is even looked at.
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "enrol_throttled")
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    assert!(server.devices().is_empty());
    let hash = code_hash(&normalise_code(&code).unwrap());
    assert_eq!(server.store().enrol_code_attempts(&hash).unwrap(), Some(0));
    server.stop().await;
}

/// Refusals are counted in the database, not in the server's memory: a restarted server (or
/// another replica) still throttles the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_outlives_the_server_process() {
    let server = TestServer::start().await;
    let code = server.enrol_code("tablet");
    let (_key, csr) = key_and_csr();
    for i in 0..5 {
        let r = post_enrol(&server, &format!("ZZZZZ-ZZZZ{i}"), &csr).await;
        assert_eq!(r.code(), "enrol_code_invalid");
    }
    let server = server.restarted().await;
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "enrol_throttled")
    );
    assert!(server.devices().is_empty());
    let counted = server
        .store()
        .attempts_since("enrol_ip", "127.0.0.1", 0)
        .unwrap();
    assert_eq!(counted.count, 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pinning_another_ca_refuses_the_server() {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    assert_ne!(server.ca_fingerprint, other.ca_fingerprint);
    // The device pinned `other`'s CA (from a QR code for another setting): the handshake
    // with `server` fails before any code is sent.
    let err = request(
        server.addr,
        client_config(&other.ca_pem, None),
        "GET",
        "/v1/health",
        &[],
        Vec::new(),
    )
    .await
    .err()
    .expect("the handshake must fail");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Pinned to the right CA, the same request works.
    let ok = request(
        server.addr,
        client_config(&server.ca_pem, None),
        "GET",
        "/v1/health",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(ok.json(), serde_json::json!({"ok": true}));
    server.stop().await;
    other.stop().await;
}

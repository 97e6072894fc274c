//! Device routes refuse connections without a certificate, with another CA's certificate,
//! from devices not in the register and from revoked devices: each distinctly.

use hyper::StatusCode;
use sprig_server::ServerStore;
use sprig_server::store::DeviceStatus;

use crate::support::{
    Identity, TestServer, client_config, enrol, key_and_csr, request, tls_connect,
};

async fn ws_status(
    server: &TestServer,
    id: Option<&Identity>,
) -> Result<(StatusCode, String), String> {
    let tls = tls_connect(server.addr, client_config(&server.ca_pem, id))
        .await
        .map_err(|e| e.to_string())?;
    match tokio_tungstenite::client_async("wss://localhost/v1/sync", tls).await {
        Ok(_) => Ok((StatusCode::SWITCHING_PROTOCOLS, String::new())),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap();
            Ok((r.status(), body["code"].as_str().unwrap().to_owned()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_a_client_certificate_is_401() {
    let server = TestServer::start().await;
    let (status, code) = ws_status(&server, None).await.unwrap();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "client_certificate_required")
    );
    for path in [
        "/v1/media/".to_owned() + &"ab".repeat(32),
        "/v1/media/".to_owned() + &"ab".repeat(32) + "/thumbnail",
    ] {
        let r = request(
            server.addr,
            client_config(&server.ca_pem, None),
            "GET",
            &path,
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::UNAUTHORIZED, "client_certificate_required")
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_fails_the_handshake() {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    let foreign = enrol(&other, "someone else's tablet").await;
    // Trusting `server`'s CA but presenting `other`'s certificate. With TLS 1.3 the client's
    // handshake completes before the server has checked the certificate: the refusal shows
    // on the first read.
    let err = match tls_connect(server.addr, client_config(&server.ca_pem, Some(&foreign))).await {
        Err(e) => e.to_string(),
        Ok(mut tls) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tls
                .write_all(b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            match tls.read_to_end(&mut buf).await {
                Err(e) => e.to_string(),
                Ok(_) => panic!(
                    "the server answered a foreign certificate: {}",
                    String::from_utf8_lossy(&buf)
                ),
            }
        }
    };
    assert!(err.contains("UnknownCA"), "{err}");
    server.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_revoked_devices_are_403_with_distinct_codes() {
    let server = TestServer::start().await;
    // Signed by this setting's CA but never registered (e.g. the database was restored).
    let ca = sprig_server::ca::Ca::from_pem(
        &server.ca_pem,
        &std::fs::read_to_string(server.data.ca_key()).unwrap(),
    )
    .unwrap();
    let (key_pem, csr) = key_and_csr();
    let ghost = Identity {
        device_id: "ghost".into(),
        cert_pem: ca.issue_device_cert(&csr, "ghost").unwrap().pem,
        key_pem,
    };
    let (status, code) = ws_status(&server, Some(&ghost)).await.unwrap();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "device_unknown")
    );

    let device = enrol(&server, "tablet").await;
    let (status, _) = ws_status(&server, Some(&device)).await.unwrap();
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
    // Revoked by the admin CLI while the server runs: refused at the next connection.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args(["device", "revoke", "--json", &device.device_id, "--data"])
        .arg(server.data.root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id": device.device_id, "status": "revoked", "changed": true})
    );
    assert_eq!(
        server
            .store()
            .device(&device.device_id)
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Revoked
    );
    let (status, code) = ws_status(&server, Some(&device)).await.unwrap();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "device_revoked")
    );
    let r = request(
        server.addr,
        client_config(&server.ca_pem, Some(&device)),
        "PUT",
        &format!("/v1/media/{}", "ab".repeat(32)),
        &[("x-sprig-media-kind", "photo")],
        b"x".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "device_revoked")
    );
    assert!(server.store().media(&"ab".repeat(32)).unwrap().is_none());
    server.stop().await;
}

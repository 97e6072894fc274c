//! `/v1/ready`: 200 while the database and the media store answer, 503 with a reason when
//! one does not.

use hyper::StatusCode;

use crate::support::{TestServer, client_config, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_whether_the_media_store_answers() {
    let server = TestServer::start().await;
    let ready = || async {
        request(
            server.addr,
            client_config(&server.ca_pem, None),
            "GET",
            "/v1/ready",
            &[],
            Vec::new(),
        )
        .await
        .unwrap()
    };
    let r = ready().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["ready"], true);
    // The media folder is gone (a lost mount): not ready, and it says why.
    let media = server.data.media();
    std::fs::rename(&media, media.with_extension("lost")).unwrap();
    let r = ready().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.code(), "not_ready");
    assert!(
        r.json()["message"].as_str().unwrap().contains("media"),
        "{:?}",
        r.json()
    );
    std::fs::rename(media.with_extension("lost"), &media).unwrap();
    assert_eq!(ready().await.status, StatusCode::OK);
    server.stop().await;
}

/// `/metrics` counts sessions, sync bytes, media acknowledgements and error answers, and names
/// no device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sessions_media_and_errors() {
    use sprig_proto::{MemoryDocs, Unsynced};
    let server = TestServer::start().await;
    let a = crate::support::enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    crate::sync::sync_once(&server, &a, &mut docs, Unsynced::default()).await;
    let missing = request(
        server.addr,
        client_config(&server.ca_pem, Some(&a)),
        "GET",
        &format!("/v1/media/{}", "ab".repeat(32)),
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let r = request(
        server.addr,
        client_config(&server.ca_pem, None),
        "GET",
        "/metrics",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(r.body).unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    // Counters are per process, and tests run in parallel: at least what this test did.
    assert!(value("sprig_sync_sessions_total") >= 1);
    assert!(value("sprig_sync_session_seconds_count") >= 1);
    assert!(value("sprig_sync_received_bytes_total") > 0);
    assert!(value("sprig_sync_sent_bytes_total") > 0);
    assert!(value("sprig_http_errors_total{status=\"404\"}") >= 1);
    assert!(text.contains("sprig_media_acks_total"));
    assert!(!text.contains(&a.device_id), "no device in the metrics");
    server.stop().await;
}

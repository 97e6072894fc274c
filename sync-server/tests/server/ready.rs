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

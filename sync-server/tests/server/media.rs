//! Media upload: acknowledged only once stored and verified, idempotent, a hash mismatch keeps
//! nothing; download and thumbnail; the same over an S3 bucket.

use hyper::StatusCode;
use sha2::{Digest, Sha256};
use sprig_server::ServerStore;

use crate::support::{Identity, Reply, TestServer, client_config, enrol, request};

async fn put(server: &TestServer, id: &Identity, sha: &str, kind: &str, body: &[u8]) -> Reply {
    server.reference_media(sha);
    put_unreferenced(server, id, sha, kind, body).await
}

async fn put_unreferenced(
    server: &TestServer,
    id: &Identity,
    sha: &str,
    kind: &str,
    body: &[u8],
) -> Reply {
    request(
        server.addr,
        client_config(&server.ca_pem, Some(id)),
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", kind)],
        body.to_vec(),
    )
    .await
    .unwrap()
}

async fn get(server: &TestServer, id: &Identity, path: &str) -> Reply {
    request(
        server.addr,
        client_config(&server.ca_pem, Some(id)),
        "GET",
        path,
        &[],
        Vec::new(),
    )
    .await
    .unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_acknowledged_idempotent_and_served_back() {
    let server = TestServer::start().await;
    let device = enrol(&server, "tablet").await;
    let photo = sprig_testkit::images::jpeg_with_exif(
        640,
        480,
        1,
        sprig_testkit::images::ByteOrder::Little,
    );
    let sha = hex::encode(Sha256::digest(&photo));

    let r = put(&server, &device, &sha, "photo", &photo).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"sha256": sha, "size": photo.len()})
    );
    let rec = server.store().media(&sha).unwrap().unwrap();
    assert_eq!(
        (rec.size, rec.kind.as_str(), rec.device.as_str()),
        (photo.len() as u64, "photo", device.device_id.as_str())
    );
    let stored = std::fs::read(server.data.media().join(&sha[..2]).join(&sha)).unwrap();
    assert_eq!(stored, photo);

    // Re-uploading (the device did not see the first ack) gets the same ack.
    let again = put(&server, &device, &sha, "photo", &photo).await;
    assert_eq!((again.status, again.json()), (r.status, r.json()));

    let back = get(&server, &device, &format!("/v1/media/{sha}")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.body, photo);
    assert_eq!(back.headers["cache-control"], "no-store");
    let thumb = get(&server, &device, &format!("/v1/media/{sha}/thumbnail")).await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert!(thumb.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    assert!(thumb.body.len() < photo.len());
    let missing = get(&server, &device, &format!("/v1/media/{}", "0".repeat(64))).await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let actions: Vec<String> = server
        .store()
        .audit_log(50)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.iter().any(|a| a == "media_upload"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_mismatch_is_422_and_nothing_is_kept() {
    let server = TestServer::start_with(|c| c.max_media_bytes = 1024).await;
    let device = enrol(&server, "tablet").await;
    let body = b"the real bytes".to_vec();
    let wrong = hex::encode(Sha256::digest(b"other bytes"));
    let r = put(&server, &device, &wrong, "photo", &body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
    );
    assert!(server.store().media(&wrong).unwrap().is_none());
    assert!(
        files_under(&server.data.media()).is_empty(),
        "{:?}",
        files_under(&server.data.media())
    );

    let big = vec![7u8; 2048];
    let r = put(
        &server,
        &device,
        &hex::encode(Sha256::digest(&big)),
        "video",
        &big,
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let r = put(&server, &device, "xyz", "photo", &body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let r = put(
        &server,
        &device,
        &hex::encode(Sha256::digest(&body)),
        "audio",
        &body,
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(files_under(&server.data.media()).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_and_an_interrupted_one_leaves_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let device = enrol(&server, "tablet").await;
    // Several megabytes arrive in many body chunks.
    let video: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&video));
    let r = put(&server, &device, &sha, "video", &video).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        std::fs::read(server.data.media().join(&sha[..2]).join(&sha)).unwrap(),
        video
    );

    // The connection drops after 10 of 100 bytes: no record, no file, no temporary file.
    let body = [1u8; 100];
    let sha = hex::encode(Sha256::digest(body));
    let mut tls =
        crate::support::tls_connect(server.addr, client_config(&server.ca_pem, Some(&device)))
            .await
            .unwrap();
    server.reference_media(&sha);
    let head = format!(
        "PUT /v1/media/{sha} HTTP/1.1\r\nhost: localhost\r\nx-sprig-media-kind: photo\r\ncontent-length: 100\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    tls.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = tls.read_to_end(&mut sink).await;
    // The server notices the end of the stream asynchronously.
    for _ in 0..50 {
        let tmp: Vec<_> = std::fs::read_dir(server.data.media().join("tmp"))
            .unwrap()
            .collect();
        if tmp.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(server.store().media(&sha).unwrap().is_none());
    assert!(!server.data.media().join(&sha[..2]).join(&sha).exists());
    assert!(
        std::fs::read_dir(server.data.media().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_no_entry_references_is_refused_and_nothing_is_kept() {
    let server = TestServer::start().await;
    let device = enrol(&server, "tablet").await;
    let body = b"bytes nobody asked for".to_vec();
    let sha = hex::encode(Sha256::digest(&body));
    let r = put_unreferenced(&server, &device, &sha, "photo", &body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "media_unreferenced")
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("keeps its copy")
    );
    assert!(server.store().media(&sha).unwrap().is_none());
    assert!(files_under(&server.data.media()).is_empty());
    // Once an observation refers to it, the same upload is taken.
    let r = put(&server, &device, &sha, "photo", &body).await;
    assert_eq!(r.status, StatusCode::OK);
    server.stop().await;
}

/// The same HTTP contract with media in an S3 bucket (s3s-fs): the acknowledgement comes
/// once the bucket holds the file under its name; a repeat gets the same one; download and
/// thumbnail read from the bucket; a hash mismatch and a dropped connection leave nothing in
/// it; with the bucket unreachable nothing is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_to_an_s3_bucket_are_acknowledged_only_once_stored() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s3 = crate::s3::S3Server::start();
    let media =
        sprig_server::media_store::S3MediaStore::new(&s3.config("settings/acorns")).unwrap();
    let server = TestServer::start_with(|c| c.media = Some(Arc::new(media))).await;
    let device = enrol(&server, "tablet").await;
    let photo = sprig_testkit::images::jpeg_with_exif(
        640,
        480,
        1,
        sprig_testkit::images::ByteOrder::Little,
    );
    let sha = hex::encode(Sha256::digest(&photo));
    let r = put(&server, &device, &sha, "photo", &photo).await;
    assert_eq!(
        (r.status, r.json()),
        (
            StatusCode::OK,
            serde_json::json!({"sha256": sha, "size": photo.len()})
        ),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let key = format!("settings/acorns/media/{sha}");
    assert_eq!(s3.everything().await, vec![key.clone()]);
    assert!(
        server.data.media().join(&sha[..2]).read_dir().is_err(),
        "nothing on disk"
    );
    let again = put(&server, &device, &sha, "photo", &photo).await;
    assert_eq!((again.status, again.json()), (r.status, r.json()));

    let back = get(&server, &device, &format!("/v1/media/{sha}")).await;
    assert_eq!(
        (back.status, back.body.as_slice()),
        (StatusCode::OK, photo.as_slice())
    );
    assert_eq!(back.headers["cache-control"], "no-store");
    let thumb = get(&server, &device, &format!("/v1/media/{sha}/thumbnail")).await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert!(thumb.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let thumb_key = format!("settings/acorns/thumbs/{sha}.jpg");
    assert_eq!(s3.everything().await, vec![key.clone(), thumb_key.clone()]);

    let wrong = hex::encode(Sha256::digest(b"other bytes"));
    let r = put(&server, &device, &wrong, "photo", b"the real bytes").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
    );
    assert!(server.store().media(&wrong).unwrap().is_none());
    assert_eq!(s3.everything().await, vec![key.clone(), thumb_key.clone()]);

    // The connection drops after 10 of 100 bytes.
    let body = [1u8; 100];
    let cut = hex::encode(Sha256::digest(body));
    let mut tls =
        crate::support::tls_connect(server.addr, client_config(&server.ca_pem, Some(&device)))
            .await
            .unwrap();
    server.reference_media(&cut);
    let head = format!(
        "PUT /v1/media/{cut} HTTP/1.1\r\nhost: localhost\r\nx-sprig-media-kind: photo\r\ncontent-length: 100\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    tls.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = tls.read_to_end(&mut sink).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(server.store().media(&cut).unwrap().is_none());
    assert_eq!(s3.everything().await, vec![key, thumb_key]);

    // The bucket goes away: an upload is refused, not acknowledged, and nothing is recorded.
    drop(s3);
    let video = sprig_server::media_store::suite::bytes_of(4096, 9);
    let vsha = hex::encode(Sha256::digest(&video));
    let r = put(&server, &device, &vsha, "video", &video).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal")
    );
    assert!(server.store().media(&vsha).unwrap().is_none());
    server.stop().await;
}

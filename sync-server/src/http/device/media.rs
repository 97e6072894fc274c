//! `PUT`/`GET /v1/media/{sha256}` and its thumbnail: uploads streamed into the media store and
//! acknowledged only once stored and verified; downloads with `Cache-Control: no-store`.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path as UrlPath};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;

use super::{Route, authenticate, check_network};
use crate::admin::now_ms;
use crate::http::{ApiError, AppState, DeviceSetting, Peer, audit, blocking};
use crate::media_store::MediaStoreError;
use crate::store::MediaRecord;

fn parse_sha(s: &str) -> Result<String, ApiError> {
    let s = s.to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(
            "The media address must be the file's SHA-256 as 64 hex digits.",
        ))
    }
}

#[derive(Serialize)]
pub(crate) struct MediaAckBody {
    sha256: String,
    size: u64,
}

fn media_error(e: &MediaStoreError) -> ApiError {
    if e.is_storage_full() {
        tracing::error!("media store is full");
        return ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "The server's disk is full; keep the file on the device and tell the setting's administrator.",
        );
    }
    ApiError::internal(e)
}

pub(crate) async fn media_put(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<MediaAckBody>, ApiError> {
    check_network(&st, &peer).await?;
    let device = authenticate(&st, &peer, Route::Media).await?;
    let sha = parse_sha(&sha)?;
    let kind = match headers
        .get("x-sprig-media-kind")
        .and_then(|v| v.to_str().ok())
    {
        Some(k @ ("photo" | "video")) => k.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "Send the header X-Sprig-Media-Kind: photo or video.",
            ));
        }
    };
    let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Err(ApiError::bad_request(
            "Send the upload with a Content-Length.",
        ));
    };
    let max = st.config.max_media_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The file is over the server's limit of {max} bytes; it cannot be uploaded."),
        )
    };
    if len > max {
        return Err(too_large());
    }
    // Only what an observation on the server refers to is taken: a device cannot use the
    // server as a store for anything else.
    let (store, s2) = (st.store.clone(), sha.clone());
    let referenced = blocking(move || store.media_referenced(&s2))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    if !referenced {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "media_unreferenced",
            "No observation on the server refers to this photo or video, so it was not \
             accepted; sync the observation first. The tablet keeps its copy.",
        ));
    }
    let store = st.store.clone();
    let s2 = sha.clone();
    let known = blocking(move || store.media(&s2))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    if let Some(m) = known
        && st.media.contains(&sha).await.unwrap_or(false)
    {
        // Read the body (discarding it) before answering: a device still sending it would see
        // the connection closed instead of this acknowledgement, and keep the copy forever.
        let mut rest = body.into_data_stream();
        while let Some(Ok(_)) = rest.next().await {}
        note_acked(&st, &device.id).await?;
        crate::http::metrics::media_ack(0);
        audit(
            st.store.as_ref(),
            &format!("device:{}", device.id),
            Some(&device.id),
            "media_ack",
            format!("sha256={sha} size={} repeat=true", m.size),
        );
        return Ok(Json(MediaAckBody {
            sha256: sha,
            size: m.size,
        }));
    }

    // The store answers only once the file is durably stored under its name with its SHA-256
    // and size checked (media_store::MediaStore::put): only then may the device purge it.
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let size = match st.media.put(&sha, len, stream).await {
        Ok(size) => size,
        Err(MediaStoreError::TooLarge { .. }) => return Err(too_large()),
        Err(MediaStoreError::Short { got, .. }) => {
            return Err(ApiError::bad_request(format!(
                "The upload ended after {got} of {len} bytes; upload it again."
            )));
        }
        Err(MediaStoreError::HashMismatch) => {
            audit(
                st.store.as_ref(),
                &format!("device:{}", device.id),
                Some(&device.id),
                "media_refused",
                format!("sha256={sha} reason=hash_mismatch"),
            );
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "The file's SHA-256 does not match its address; keep the original and upload it again.",
            ));
        }
        Err(e) => return Err(media_error(&e)),
    };
    let rec = MediaRecord {
        sha256: sha.clone(),
        size,
        kind,
        device: device.id.clone(),
        stored_at: now_ms(),
    };
    let store = st.store.clone();
    blocking(move || store.insert_media(&rec))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    note_acked(&st, &device.id).await?;
    crate::http::metrics::media_ack(size);
    audit(
        st.store.as_ref(),
        &format!("device:{}", device.id),
        Some(&device.id),
        "media_upload",
        format!("sha256={sha} size={size}"),
    );
    Ok(Json(MediaAckBody { sha256: sha, size }))
}

/// The device will purge what the server just acknowledged: count it off its pending media.
async fn note_acked(st: &AppState, device: &str) -> Result<(), ApiError> {
    let store = st.store.clone();
    let device = device.to_owned();
    blocking(move || store.note_media_acked(&device))
        .await?
        .map_err(|e| ApiError::internal(&e))
}

async fn stored_media(st: &Arc<AppState>, peer: &Peer, sha: &str) -> Result<MediaRecord, ApiError> {
    check_network(st, peer).await?;
    authenticate(st, peer, Route::Media).await?;
    let sha = parse_sha(sha)?;
    let store = st.store.clone();
    blocking(move || store.media(&sha))
        .await?
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::not_found)
}

fn bytes_response(body: Body, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn media_get(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Response, ApiError> {
    let rec = stored_media(&st, &peer, &sha).await?;
    let stream = st.media.get(&rec.sha256).await.map_err(|e| match e {
        MediaStoreError::NotFound => ApiError::not_found(),
        other => media_error(&other),
    })?;
    let ct = if rec.kind == "photo" {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
    Ok(bytes_response(Body::from_stream(stream), ct))
}

pub(crate) async fn media_thumbnail(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Response, ApiError> {
    let rec = stored_media(&st, &peer, &sha).await?;
    if rec.kind != "photo" {
        return Err(ApiError::not_found());
    }
    if let Ok(Some(bytes)) = st.media.thumbnail(&rec.sha256).await {
        return Ok(bytes_response(Body::from(bytes), "image/jpeg"));
    }
    let photo = crate::media_store::read_all(st.media.as_ref(), &rec.sha256)
        .await
        .map_err(|e| media_error(&e))?;
    let made =
        blocking(move || sprig_media::process_photo(&photo, &sprig_media::PhotoOptions::default()))
            .await?;
    let bytes = match made {
        Ok(p) => Bytes::from(p.thumbnail.bytes),
        Err(e) => {
            tracing::warn!(code = e.code(), "no thumbnail for a stored photo");
            return Err(ApiError::not_found());
        }
    };
    // A cache: a failure to keep it only costs the next request a new thumbnail.
    let _ = st.media.put_thumbnail(&rec.sha256, bytes.clone()).await;
    Ok(bytes_response(Body::from(bytes), "image/jpeg"))
}

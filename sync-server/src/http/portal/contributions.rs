//! Contributions from home: `POST /api/v1/children/{id}/contributions` (multipart: a `text`
//! field and up to [`MAX_FILES`] `file` parts) and `GET` of the same path, the parent's own
//! contributions with their outcome.
//!
//! Everything in the upload is hostile until checked. A file's type is read from its bytes,
//! never from its name or the part's header: photos go through `sprig-media` (decoded,
//! turned upright, re-encoded from pixels, so no EXIF, GPS, XMP or trailing bytes survive,
//! and resized); videos must be MP4, QuickTime or WebM by their container and stay under the
//! server's limit. The whole body is bounded by `ServeConfig::max_contribution_bytes`. Every
//! file is checked before anything is stored, so a refused upload writes nothing. Then the
//! media go to the media store, and the contribution is written into the child's journal as a
//! pending `ParentContribution` by the server (tablets may not write those), which announces
//! it to the watching tablets. Only staff approval on a tablet puts it in the journal.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request};
use axum::http::{StatusCode, header};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::Digest;
use sprig_core::rules::{MAX_MEDIA_PER_ENTRY, MAX_TEXT_CHARS};
use sprig_core::{
    Actor, ChildId, Consent, EntryKind, EntryStatus, MediaKind, MediaRef, NewEntry, ParentView,
    Sha256, ShownAuthor, Timestamp, plan_entry,
};
use sprig_media::{Limits, MediaError, PhotoOptions, VideoContainer};
use sprig_proto::DocId;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use super::api::{
    ErrorBody, JournalMedia, agreement_accepted, agreement_required, consent_required, own_child,
    run, view_of,
};
use super::session::SignedIn;
use crate::admin::now_ms;
use crate::docs::edit_journal_with_media;
use crate::http::{ApiError, AppState};
use crate::store::MediaRecord;

/// Photos and videos in one contribution at most.
pub(crate) const MAX_FILES: usize = 10;
const _: () = assert!(MAX_FILES <= MAX_MEDIA_PER_ENTRY);

/// Uploads whose files are decoded at once per server (decoding a photo takes a core and up
/// to `sprig_media::Limits::max_alloc` of memory), so a burst of uploads cannot take all of
/// either.
const CONCURRENT_UPLOADS: usize = 4;

fn uploads() -> &'static Semaphore {
    static S: OnceLock<Semaphore> = OnceLock::new();
    S.get_or_init(|| Semaphore::new(CONCURRENT_UPLOADS))
}

/// The multipart form of `POST /api/v1/children/{id}/contributions`.
#[derive(ToSchema)]
#[allow(dead_code)] // The schema of the form only; the handler reads the parts one by one.
pub(crate) struct ContributionForm {
    /// What happened, plain text, at most 20,000 characters.
    text: String,
    /// Photos (JPEG, PNG, WebP) and videos (MP4, MOV, WebM), at most 10, recognised by their
    /// bytes.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// A contribution was received: pending until staff review it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ContributionCreated {
    id: String,
    /// Always `pending`.
    status: String,
}

/// One of the parent's own contributions and its outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct Contribution {
    id: String,
    /// ms since the Unix epoch.
    created_at: i64,
    text: String,
    /// `pending`, `approved` or `rejected`.
    status: String,
    /// Why staff turned it down (rejected only), else `null`.
    reason: Option<String>,
    media: Vec<JournalMedia>,
}

fn too_large(max: u64) -> ApiError {
    let mib = max / (1024 * 1024);
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "This is more than the {mib} MB one contribution may hold. Send fewer or shorter \
             videos, or split it into several contributions."
        ),
    )
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_type",
        message,
    )
}

/// What the parent is told about a file `sprig-media` refused.
fn media_refusal(e: &MediaError, max: u64) -> ApiError {
    match e {
        MediaError::VideoTooLarge { .. } => too_large(max),
        e if e.is_limit() => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "A photo is too large (too many pixels or bytes). Send a smaller copy of it.",
        ),
        MediaError::UnsupportedPhotoFormat { format } => unsupported(format!(
            "{format} photos cannot be shared yet. Send it as JPEG or PNG (on an iPhone: \
             Settings, Camera, Formats, Most Compatible)."
        )),
        MediaError::CorruptPhoto { .. } | MediaError::Empty => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "damaged_file",
            "A photo could not be read: it may be damaged or incomplete. Try choosing it again.",
        ),
        _ => unsupported(
            "Only photos (JPEG, PNG, WebP) and videos (MP4, MOV, WebM) can be shared. \
             Remove the other files and try again.",
        ),
    }
}

/// One checked file, ready to store.
struct Checked {
    sha: String,
    bytes: bytes::Bytes,
    thumbnail: Option<bytes::Bytes>,
    media: MediaRef,
}

/// Recognises and processes one uploaded file by its bytes.
fn check_file(bytes: bytes::Bytes, max: u64) -> Result<Checked, ApiError> {
    let photo = sprig_media::sniff_photo(&bytes);
    if let Err(e @ MediaError::UnsupportedPhotoFormat { .. }) = &photo {
        return Err(media_refusal(e, max));
    }
    if photo.is_ok() {
        let out = sprig_media::process_photo(&bytes, &PhotoOptions::default())
            .map_err(|e| media_refusal(&e, max))?;
        let sha = Sha256::from_hex(&out.sha256).map_err(|e| ApiError::internal(&e))?;
        return Ok(Checked {
            media: MediaRef {
                sha256: sha,
                kind: MediaKind::Photo,
                mime: "image/jpeg".into(),
                size: out.photo.bytes.len() as u64,
                width: out.photo.width,
                height: out.photo.height,
            },
            sha: out.sha256,
            bytes: out.photo.bytes.into(),
            thumbnail: Some(out.thumbnail.bytes.into()),
        });
    }
    let mut limits = Limits::default();
    limits.max_video_bytes = max;
    let head = &bytes[..bytes.len().min(sprig_media::VIDEO_SNIFF_LEN)];
    let container: VideoContainer = sprig_media::sniff_video(head, bytes.len() as u64, &limits)
        .map_err(|e| media_refusal(&e, max))?;
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    Ok(Checked {
        sha: hex::encode(digest),
        media: MediaRef {
            sha256: Sha256::from_bytes(digest),
            kind: MediaKind::Video,
            mime: container.mime_type().into(),
            size: bytes.len() as u64,
            width: 0,
            height: 0,
        },
        bytes,
        thumbnail: None,
    })
}

/// Before a child's journal opens to its parent, the photo-consent question is answered.
fn require_consent(who: &SignedIn, child: &ChildId) -> Result<(), ApiError> {
    if who
        .roster
        .child(child)
        .is_none_or(|c| c.photo_consent == Consent::NotAsked)
    {
        return Err(consent_required());
    }
    Ok(())
}

fn upload_error(e: &axum::extract::multipart::MultipartError, max: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(max);
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_upload",
        "The upload did not arrive whole. Check your connection and send it again.",
    )
}

/// The parts of the form, read within the limits.
struct Form {
    text: String,
    files: Vec<bytes::Bytes>,
}

async fn read_form(mut form: Multipart, max: u64) -> Result<Form, ApiError> {
    let mut text = None;
    let mut files = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| upload_error(&e, max))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "text" if text.is_none() => {
                // UTF-8 takes at most 4 bytes a character: read no more than the bound needs.
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(&e, max))? {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > MAX_TEXT_CHARS * 4 {
                        return Err(text_too_long());
                    }
                }
                let t = String::from_utf8(buf)
                    .map_err(|_| ApiError::bad_request("The text is not readable (UTF-8)."))?;
                text = Some(t);
            }
            "file" => {
                if files.len() == MAX_FILES {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "too_many_files",
                        format!(
                            "One contribution holds at most {MAX_FILES} photos and videos. \
                             Send the rest in another one."
                        ),
                    ));
                }
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(&e, max))? {
                    buf.extend_from_slice(&chunk);
                }
                // A browser sends an empty part for an empty file picker: not a file.
                if !buf.is_empty() {
                    files.push(buf.into());
                }
            }
            _ => {
                return Err(ApiError::bad_request(
                    "The form has a part this server does not take: send `text` and `file` only.",
                ));
            }
        }
    }
    Ok(Form {
        text: text.unwrap_or_default(),
        files,
    })
}

fn text_too_long() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "text_too_long",
        format!("The text is too long: at most {MAX_TEXT_CHARS} characters."),
    )
}

/// Sends a contribution from home for one's own child: text and photos or videos. It is
/// pending until staff approve it on a tablet; only then does it join the journal.
#[utoipa::path(post, path = "/api/v1/children/{id}/contributions", tag = "children",
    params(("id" = String, Path, description = "The child's id")),
    request_body(content = ContributionForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = ContributionCreated),
        (status = 400, body = ErrorBody, description = "Empty, text too long (`text_too_long`), too many files (`too_many_files`), or a malformed upload (`bad_upload`)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required or consent_required"),
        (status = 404, body = ErrorBody, description = "Not this parent's child"),
        (status = 413, body = ErrorBody, description = "Over the server's size limit (`too_large`)"),
        (status = 415, body = ErrorBody, description = "A file that is not an accepted photo or video (`unsupported_type`)"),
        (status = 422, body = ErrorBody, description = "A damaged photo (`damaged_file`)"),
    ))]
pub(crate) async fn create(
    who: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<ContributionCreated>), ApiError> {
    let child = own_child(&who, &id)?;
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    require_consent(&who, &child)?;
    let max = who.setting.config.max_contribution_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let form = Multipart::from_request(request, &()).await.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_upload",
            "Send the contribution as a form (multipart/form-data) with `text` and `file` parts.",
        )
    })?;
    let form = read_form(form, max).await?;
    let text = form.text.trim().to_owned();
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(text_too_long());
    }
    if text.is_empty() && form.files.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty",
            "Write something or add a photo or video first.",
        ));
    }
    // Every file is checked before anything is stored: a refusal leaves nothing behind.
    // Decoding is the costly part: a few at a time, whatever the number of uploads.
    let files = form.files;
    let checked = {
        let _permit = uploads()
            .acquire()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        crate::http::blocking(move || {
            files
                .into_iter()
                .map(|f| check_file(f, max))
                .collect::<Result<Vec<_>, _>>()
        })
        .await??
    };
    let st = who.setting.clone();
    store_media(&st, &checked, &who.parent.to_string()).await?;
    let (roster, parent) = (who.roster, who.parent);
    let media: Vec<MediaRef> = checked.iter().map(|c| c.media.clone()).collect();
    let shas: Vec<String> = checked.iter().map(|c| c.sha.clone()).collect();
    let n_media = media.len();
    let at = Timestamp(now_ms());
    let entry = {
        let child = child.clone();
        run(&st, move |s| -> Result<String, ApiError> {
            let plan = plan_entry(
                &roster,
                &Actor::Parent(parent.clone()),
                NewEntry {
                    children: vec![child.clone()],
                    text,
                    media,
                    ..NewEntry::default()
                },
                at,
            )
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
            edit_journal_with_media(s, &child, shas, |j| -> Result<(), ApiError> {
                j.apply_entry(&plan)
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            })?;
            crate::http::audit(
                s,
                &format!("parent:{parent}"),
                None,
                "portal_contribution",
                format!("child={child} entry={} media={n_media}", plan.id),
            );
            Ok(plan.id.to_string())
        })
        .await??
    };
    st.changes.announce_written(vec![DocId::Journal(child)]);
    Ok((
        StatusCode::CREATED,
        Json(ContributionCreated {
            id: entry,
            status: "pending".into(),
        }),
    ))
}

/// Puts checked files in the media store and records them (the uploader is the parent).
async fn store_media(st: &Arc<AppState>, files: &[Checked], parent: &str) -> Result<(), ApiError> {
    for f in files {
        let body = futures_util::stream::once({
            let b = f.bytes.clone();
            async move { Ok(b) }
        })
        .boxed();
        st.media
            .put(&f.sha, f.bytes.len() as u64, body)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if let Some(t) = &f.thumbnail {
            // A cache: without it the tablet makes its own.
            let _ = st.media.put_thumbnail(&f.sha, t.clone()).await;
        }
        let rec = MediaRecord {
            sha256: f.sha.clone(),
            size: f.bytes.len() as u64,
            kind: f.media.kind.as_str().to_owned(),
            device: format!("parent:{parent}"),
            stored_at: now_ms(),
        };
        run(st, move |s| s.insert_media(&rec))
            .await?
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(())
}

fn status_str(s: EntryStatus) -> &'static str {
    match s {
        EntryStatus::Published => "approved",
        EntryStatus::Rejected => "rejected",
        _ => "pending",
    }
}

/// The parent's own contributions in a view, newest first. The reason of a rejection is what
/// staff wrote under it when they turned it down (the tablet's reject writes it as a reply).
fn own_contributions(view: ParentView) -> Vec<Contribution> {
    view.entries
        .into_iter()
        .filter(|e| e.kind == EntryKind::ParentContribution && e.author == ShownAuthor::You)
        .map(|e| Contribution {
            reason: (e.status == EntryStatus::Rejected)
                .then(|| {
                    e.replies
                        .iter()
                        .rev()
                        .find(|r| matches!(r.author, ShownAuthor::Staff(_)))
                        .map(|r| r.text.clone())
                })
                .flatten(),
            id: e.id.to_string(),
            created_at: e.created_at.0,
            text: e.text,
            status: status_str(e.status).into(),
            media: e.media.iter().map(JournalMedia::of).collect(),
        })
        .collect()
}

/// The parent's own contributions for their child, newest first, with their outcome:
/// pending, approved (in the journal), or rejected with the reason staff gave.
#[utoipa::path(get, path = "/api/v1/children/{id}/contributions", tag = "children",
    params(("id" = String, Path, description = "The child's id")),
    responses(
        (status = 200, body = [Contribution]),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required or consent_required"),
        (status = 404, body = ErrorBody, description = "Not this parent's child"),
    ))]
pub(crate) async fn list(
    who: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Vec<Contribution>>, ApiError> {
    let child = own_child(&who, &id)?;
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    require_consent(&who, &child)?;
    let (roster, parent) = (who.roster, who.parent);
    let reads = who.setting.reads.clone();
    let view = run(&who.setting, move |s| {
        view_of(s, &reads, &roster, &parent, &child)
    })
    .await??
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(own_contributions(view)))
}

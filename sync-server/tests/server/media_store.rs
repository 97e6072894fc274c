//! The shared media-store suite on the filesystem store and on an S3 bucket (s3s-fs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sprig_server::media_store::suite::Subject;
use sprig_server::media_store::{FsMediaStore, MediaStore};

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

pub async fn fs_subject() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let store = FsMediaStore::new(media.clone());
    store.prepare().await.unwrap();
    Subject {
        store: Arc::new(store),
        everything: Box::new(move || {
            let mut names: Vec<String> = files_under(&media)
                .into_iter()
                .map(|p| p.strip_prefix(&media).unwrap().display().to_string())
                .collect();
            names.sort();
            Box::pin(async move { names })
        }),
        guard: Box::new(dir),
    }
}

mod filesystem {
    sprig_server::media_store_tests!(crate::media_store::fs_subject());
}

mod s3 {
    sprig_server::media_store_tests!(crate::s3::s3_subject());
}

/// The filesystem store empties `tmp/` when it starts (uploads a crash cut short).
#[tokio::test]
async fn the_filesystem_store_clears_tmp_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsMediaStore::new(dir.path().to_owned());
    store.prepare().await.unwrap();
    std::fs::write(dir.path().join("tmp").join("half-an-upload"), b"x").unwrap();
    store.prepare().await.unwrap();
    assert!(files_under(dir.path()).is_empty());
}

/// The S3 store's start deletes only temporaries old enough that no upload still writes them
/// (other replicas share the bucket): a day-old one goes, a fresh one stays.
#[tokio::test]
async fn the_s3_store_deletes_only_stale_temporaries_at_start() {
    use object_store::ObjectStoreExt;
    let server = crate::s3::S3Server::start();
    let raw = server.raw();
    for name in ["tmp/in-flight", "tmp/abandoned"] {
        raw.put(
            &object_store::path::Path::from(name),
            object_store::PutPayload::from_static(b"x"),
        )
        .await
        .unwrap();
    }
    // s3s-fs reports a file's modification time as the object's.
    let abandoned = server.root.join(crate::s3::BUCKET).join("tmp/abandoned");
    let status = std::process::Command::new("touch")
        .args(["-d", "1 day ago"])
        .arg(&abandoned)
        .status()
        .unwrap();
    assert!(status.success());
    let store = sprig_server::media_store::S3MediaStore::new(&server.config("")).unwrap();
    store.prepare().await.unwrap();
    assert_eq!(server.everything().await, vec!["tmp/in-flight".to_owned()]);
}

/// The S3 suite's "nothing left" look sees a multipart upload that was neither completed nor
/// aborted (so the suite's interrupted-upload checks can fail).
#[tokio::test]
async fn the_s3_look_sees_unfinished_multipart_uploads() {
    use object_store::ObjectStoreExt;
    let server = crate::s3::S3Server::start();
    let raw = server.raw();
    let mut upload = raw
        .put_multipart(&object_store::path::Path::from("tmp/unfinished"))
        .await
        .unwrap();
    upload
        .put_part(object_store::PutPayload::from(vec![1u8; 5 * 1024 * 1024]))
        .await
        .unwrap();
    let left = server.everything().await;
    assert!(
        left.iter().any(|n| n.starts_with("(s3s-fs)")),
        "an open upload is invisible to the look: {left:?}"
    );
    upload.abort().await.unwrap();
    assert_eq!(server.everything().await, Vec::<String>::new());
}

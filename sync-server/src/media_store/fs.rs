//! The data directory's `media/` folder: `ab/abcd…` by SHA-256, `thumbs/` (a cache),
//! `tmp/` (uploads in progress).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{ByteStream, Intake, MediaFuture, MediaStore, MediaStoreError};

/// Media files in a folder. An upload is streamed into `tmp/`, hashed while written and
/// fsynced, then renamed into place and its folders fsynced, so a file under its final name
/// is always whole and survives a power cut.
#[derive(Clone, Debug)]
pub struct FsMediaStore {
    dir: PathBuf,
}

impl FsMediaStore {
    /// The store in `dir` (the data directory's `media/`). Nothing is touched until
    /// [`MediaStore::prepare`].
    #[must_use]
    pub fn new(dir: PathBuf) -> FsMediaStore {
        FsMediaStore { dir }
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file `sha256` is kept.
    #[must_use]
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    fn thumb_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("thumbs").join(format!("{sha256}.jpg"))
    }

    async fn receive(
        tmp: &Path,
        len: u64,
        mut body: ByteStream,
    ) -> Result<(u64, String), MediaStoreError> {
        let mut file = tokio::fs::File::create(tmp).await?;
        let mut intake = Intake::new(len);
        while let Some(piece) = body.next().await {
            let chunk = intake.take(piece)?;
            file.write_all(&chunk).await?;
        }
        let received = intake.finish()?;
        file.flush().await?;
        file.sync_all().await?;
        Ok(received)
    }

    async fn place(&self, tmp: &Path, sha256: &str) -> std::io::Result<()> {
        let path = self.path(sha256);
        let dir = path.parent().unwrap_or(&self.dir).to_owned();
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(tmp, &path).await?;
        fsync_dir(&dir).await?;
        fsync_dir(&self.dir).await
    }
}

async fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

impl MediaStore for FsMediaStore {
    fn prepare(&self) -> MediaFuture<'_, ()> {
        Box::pin(async move {
            let tmp = self.dir.join("tmp");
            tokio::fs::create_dir_all(&tmp).await?;
            tokio::fs::create_dir_all(self.dir.join("thumbs")).await?;
            // Uploads interrupted by a crash: their devices kept the originals and will
            // upload again.
            let mut rd = tokio::fs::read_dir(&tmp).await?;
            while let Some(e) = rd.next_entry().await? {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
            Ok(())
        })
    }

    fn check(&self) -> MediaFuture<'_, ()> {
        // An upload writes to `tmp/` first: the folder must be there and a folder.
        Box::pin(async move {
            let tmp = self.dir.join("tmp");
            if tokio::fs::metadata(&tmp).await?.is_dir() {
                Ok(())
            } else {
                Err(MediaStoreError::Io(std::io::Error::new(
                    ErrorKind::NotADirectory,
                    format!("{} is not a folder", tmp.display()),
                )))
            }
        })
    }

    fn contains<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, bool> {
        Box::pin(async move {
            Ok(tokio::fs::try_exists(self.path(sha256))
                .await
                .unwrap_or(false))
        })
    }

    fn put<'a>(&'a self, sha256: &'a str, len: u64, body: ByteStream) -> MediaFuture<'a, u64> {
        Box::pin(async move {
            let tmp = self
                .dir
                .join("tmp")
                .join(uuid::Uuid::new_v4().simple().to_string());
            let (size, digest) = match Self::receive(&tmp, len, body).await {
                Ok(x) => x,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e);
                }
            };
            if digest != sha256 {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(MediaStoreError::HashMismatch);
            }
            if let Err(e) = self.place(&tmp, sha256).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
            Ok(size)
        })
    }

    fn get<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, ByteStream> {
        Box::pin(async move {
            let file = tokio::fs::File::open(self.path(sha256))
                .await
                .map_err(|e| {
                    if e.kind() == ErrorKind::NotFound {
                        MediaStoreError::NotFound
                    } else {
                        e.into()
                    }
                })?;
            Ok(tokio_util::io::ReaderStream::new(file).boxed())
        })
    }

    fn thumbnail<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            match tokio::fs::read(self.thumb_path(sha256)).await {
                Ok(bytes) => Ok(Some(bytes.into())),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn put_thumbnail<'a>(&'a self, sha256: &'a str, jpeg: Bytes) -> MediaFuture<'a, ()> {
        Box::pin(async move {
            let thumb = self.thumb_path(sha256);
            // A cache: written via a temporary name so a reader never sees half a file.
            let tmp = thumb.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
            tokio::fs::write(&tmp, &jpeg).await?;
            tokio::fs::rename(&tmp, &thumb).await?;
            Ok(())
        })
    }
}

//! S3-compatible object storage (AWS S3, Garage, s3s-fs, …) through `object_store`: objects
//! `PREFIX/media/<sha256>`, `PREFIX/thumbs/<sha256>.jpg`, and `PREFIX/tmp/<uuid>` for uploads
//! in progress. One bucket can hold many settings, each under its own prefix
//! ([`S3MediaStore::for_prefix`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use zeroize::Zeroizing;

use super::{ByteStream, Intake, MediaFuture, MediaStore, MediaStoreError};

/// Upload parts: S3's smallest part but the last is 5 MiB. An upload holds at most
/// `PART_SIZE × (UPLOAD_CONCURRENCY + 1)` bytes in memory.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 2;
/// A temporary object older than this belongs to no running upload (an upload is bounded by
/// the server's 512 MiB limit and its idle timeouts), so `prepare` may delete it.
const STALE_TEMP_MS: i64 = 6 * 60 * 60 * 1000;

/// How to reach a bucket.
#[non_exhaustive]
#[derive(Clone)]
pub struct S3Config {
    /// The endpoint (`http://127.0.0.1:3900`, `https://s3.example.org`); `None` for AWS.
    pub endpoint: Option<String>,
    /// The SigV4 region (`garage`, `us-east-1`, …).
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Zeroizing<String>,
    /// Allows a plain-HTTP endpoint (a store on loopback or a private network).
    pub allow_http: bool,
    /// Object names start with this (empty, or ending in `/`).
    pub prefix: String,
}

impl S3Config {
    /// Path-style requests to `bucket` at `endpoint`, in SigV4 region `region`.
    #[must_use]
    pub fn new(
        endpoint: Option<&str>,
        region: &str,
        bucket: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> S3Config {
        S3Config {
            endpoint: endpoint.map(str::to_owned),
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: Zeroizing::new(secret_access_key.to_owned()),
            allow_http: false,
            prefix: String::new(),
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret key never reaches a log line.
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Media in an S3-compatible bucket. An upload is streamed to a temporary object, hashed as
/// it goes; once the store has confirmed the whole object and the SHA-256 and size match,
/// it is copied to its final name, whose size is checked, and the temporary object deleted.
/// A mismatch or a broken upload deletes (or aborts) the temporary object; nothing ever
/// appears under the final name.
#[derive(Clone)]
pub struct S3MediaStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    label: String,
}

impl fmt::Debug for S3MediaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3MediaStore")
            .field("store", &self.label)
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn normalise_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

impl S3MediaStore {
    /// A store for the bucket `config` names. Makes no request yet.
    ///
    /// HTTPS goes through rustls with the process's default crypto provider; when none is
    /// installed this installs *ring*'s, the provider the rest of the server uses.
    ///
    /// # Errors
    /// [`MediaStoreError::Config`] for a configuration that cannot work.
    pub fn new(config: &S3Config) -> Result<S3MediaStore, MediaStoreError> {
        // reqwest (under object_store) needs a process default provider; ignore the error a
        // second install gives.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.as_str())
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(false)
            // Every request body carries its SHA-256 for the store to check on arrival.
            .with_checksum_algorithm(Checksum::SHA256);
        if let Some(endpoint) = &config.endpoint {
            b = b.with_endpoint(endpoint);
        }
        let store = b
            .build()
            .map_err(|e| MediaStoreError::Config(e.to_string()))?;
        let label = format!(
            "s3://{}{}",
            config.bucket,
            config
                .endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        );
        Ok(S3MediaStore::with_object_store(
            Arc::new(store),
            &config.prefix,
            &label,
        ))
    }

    /// A store over any `object_store` backend, its names under `prefix`.
    #[must_use]
    pub fn with_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        label: &str,
    ) -> S3MediaStore {
        S3MediaStore {
            store,
            prefix: normalise_prefix(prefix),
            label: label.to_owned(),
        }
    }

    /// The same bucket and connection, names under `prefix` inside this store's prefix: one
    /// setting's media in a shared bucket (e.g. `settings/<setting id>/`).
    #[must_use]
    pub fn for_prefix(&self, prefix: &str) -> S3MediaStore {
        S3MediaStore {
            store: self.store.clone(),
            prefix: format!("{}{}", self.prefix, normalise_prefix(prefix)),
            label: self.label.clone(),
        }
    }

    /// The object name of the file `sha256`.
    #[must_use]
    pub fn object_path(&self, sha256: &str) -> Path {
        Path::from(format!("{}media/{sha256}", self.prefix))
    }

    fn thumb_path(&self, sha256: &str) -> Path {
        Path::from(format!("{}thumbs/{sha256}.jpg", self.prefix))
    }

    fn tmp_dir(&self) -> Path {
        Path::from(format!("{}tmp", self.prefix))
    }

    /// Streams the body to `tmp`: the object store has confirmed the whole object when this
    /// returns `Ok`. On an error nothing is left (the upload is aborted or deleted).
    ///
    /// A body smaller than one part goes up in one PUT once it has all arrived; a larger one
    /// as a multipart upload, [`UPLOAD_CONCURRENCY`] parts at a time. When the body breaks,
    /// the parts already in flight are let land before the upload is aborted: an abort that
    /// overtakes a part still being stored leaves that part behind (S3 documents that such a
    /// part survives the abort), which `object_store`'s own `BufWriter::abort` risks.
    async fn receive(
        &self,
        tmp: &Path,
        len: u64,
        mut body: ByteStream,
    ) -> Result<(u64, String), MediaStoreError> {
        let mut small: Vec<Bytes> = Vec::new();
        let mut small_len = 0usize;
        let mut parts: Option<WriteMultipart> = None;
        let streamed = async {
            let mut intake = Intake::new(len);
            while let Some(piece) = body.next().await {
                let chunk = intake.take(piece)?;
                if let Some(w) = parts.as_mut() {
                    w.wait_for_capacity(UPLOAD_CONCURRENCY).await?;
                    w.put(chunk);
                    continue;
                }
                small_len += chunk.len();
                small.push(chunk);
                if small_len >= PART_SIZE {
                    let upload = self.store.put_multipart(tmp).await?;
                    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                    small.drain(..).for_each(|c| w.put(c));
                    parts = Some(w);
                }
            }
            intake.finish()
        }
        .await;
        let received = match streamed {
            Ok(r) => r,
            Err(e) => {
                if let Some(mut w) = parts {
                    // Each call returns at the first failed part; the loop ends when none
                    // is left in flight.
                    while w.wait_for_capacity(0).await.is_err() {}
                    if let Err(abort) = w.abort().await {
                        tracing::warn!(error = %abort, "could not abort an interrupted upload");
                    }
                }
                return Err(e);
            }
        };
        // Completes the upload (or sends the one PUT of a small file): its success is the
        // store's confirmation. A failed completion aborts the multipart upload itself.
        let done = match parts {
            Some(w) => w.finish().await.map(drop),
            None => self
                .store
                .put(tmp, small.into_iter().collect::<PutPayload>())
                .await
                .map(drop),
        };
        if let Err(e) = done {
            self.discard(tmp).await;
            return Err(e.into());
        }
        Ok(received)
    }

    async fn discard(&self, tmp: &Path) {
        match self.store.delete(tmp).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(error = %e, "could not delete a temporary upload"),
        }
    }

    async fn place(&self, tmp: &Path, sha256: &str, size: u64) -> Result<(), MediaStoreError> {
        let target = self.object_path(sha256);
        self.store.copy(tmp, &target).await?;
        let stored = self.store.head(&target).await?.size;
        if stored != size {
            return Err(MediaStoreError::Mismatch { sent: size, stored });
        }
        Ok(())
    }
}

fn not_found_as<T>(e: object_store::Error, value: T) -> Result<T, MediaStoreError> {
    match e {
        object_store::Error::NotFound { .. } => Ok(value),
        other => Err(other.into()),
    }
}

impl MediaStore for S3MediaStore {
    fn prepare(&self) -> MediaFuture<'_, ()> {
        Box::pin(async move {
            // Only temporaries no running upload can own: other replicas share the bucket.
            let now = crate::admin::now_ms();
            let tmp = self.tmp_dir();
            let mut listing = self.store.list(Some(&tmp));
            while let Some(meta) = listing.next().await {
                let meta = meta?;
                if now - meta.last_modified.timestamp_millis() > STALE_TEMP_MS {
                    self.discard(&meta.location).await;
                }
            }
            Ok(())
        })
    }

    fn contains<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, bool> {
        Box::pin(async move {
            match self.store.head(&self.object_path(sha256)).await {
                Ok(_) => Ok(true),
                Err(e) => not_found_as(e, false),
            }
        })
    }

    fn put<'a>(&'a self, sha256: &'a str, len: u64, body: ByteStream) -> MediaFuture<'a, u64> {
        Box::pin(async move {
            let tmp = Path::from(format!(
                "{}tmp/{}",
                self.prefix,
                uuid::Uuid::new_v4().simple()
            ));
            let (size, digest) = self.receive(&tmp, len, body).await?;
            if digest != sha256 {
                self.discard(&tmp).await;
                return Err(MediaStoreError::HashMismatch);
            }
            let placed = self.place(&tmp, sha256, size).await;
            self.discard(&tmp).await;
            placed.map(|()| size)
        })
    }

    fn get<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, ByteStream> {
        Box::pin(async move {
            let got = match self.store.get(&self.object_path(sha256)).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => return Err(MediaStoreError::NotFound),
                Err(e) => return Err(e.into()),
            };
            Ok(got
                .into_stream()
                .map(|r| r.map_err(std::io::Error::other))
                .boxed())
        })
    }

    fn thumbnail<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            match self.store.get(&self.thumb_path(sha256)).await {
                Ok(g) => Ok(Some(g.bytes().await?)),
                Err(e) => not_found_as(e, None),
            }
        })
    }

    fn put_thumbnail<'a>(&'a self, sha256: &'a str, jpeg: Bytes) -> MediaFuture<'a, ()> {
        Box::pin(async move {
            // One PUT: the object appears whole or not at all.
            self.store
                .put(&self.thumb_path(sha256), PutPayload::from(jpeg))
                .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised_and_nested() {
        let cfg = S3Config::new(Some("https://s3.example.org"), "garage", "b", "k", "s");
        let root = S3MediaStore::new(&cfg).unwrap();
        let a = root.for_prefix("/settings/a/");
        assert_eq!(a.object_path("ab").as_ref(), "settings/a/media/ab");
        assert_eq!(
            a.for_prefix("x").thumb_path("ab").as_ref(),
            "settings/a/x/thumbs/ab.jpg"
        );
        assert_eq!(root.object_path("ab").as_ref(), "media/ab");
    }

    /// An HTTPS endpoint builds its client (TLS over the installed provider) without a
    /// request, and the secret key stays out of `Debug`.
    #[test]
    fn an_https_store_builds_and_hides_its_secret() {
        let cfg = S3Config::new(
            Some("https://s3.example.org"),
            "garage",
            "media",
            "GK123",
            "very-secret-key",
        );
        let store = S3MediaStore::new(&cfg).unwrap();
        assert!(!format!("{cfg:?}{store:?}").contains("very-secret-key"));
    }
}

//! A real S3-compatible server for the tests: `s3s-fs` (crates.io, over a folder), one
//! process per test on its own port and folder, killed when dropped. The binary is built once
//! into a cache outside the clone (`make s3s-fs`, which `make test` runs); a test that cannot
//! find or reach it fails, it never skips.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::ObjectStore;
use sprig_server::media_store::suite::Subject;
use sprig_server::media_store::{MediaStore, S3Config, S3MediaStore};

pub const BUCKET: &str = "sprig-media";
pub const ACCESS_KEY: &str = "sprig-test-access";
pub const SECRET_KEY: &str = "sprig-test-secret-key";

fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SPRIG_S3S_FS") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/sprig-tools/bin/s3s-fs")
}

pub struct S3Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub endpoint: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let bin = s3s_fs_binary();
        assert!(
            bin.exists(),
            "s3s-fs, the S3 server these tests run against, is not at {}: run `make s3s-fs` \
             (make test does) or point SPRIG_S3S_FS at the binary",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        // s3s-fs keeps a bucket as a folder of its root.
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.path().join("s3s-fs.log")).unwrap();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&root)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server {
                        child,
                        root,
                        _dir: dir,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "s3s-fs did not start: {}",
            std::fs::read_to_string(dir.path().join("s3s-fs.log")).unwrap_or_default()
        );
    }

    pub fn config(&self, prefix: &str) -> S3Config {
        let mut c = S3Config::new(
            Some(&self.endpoint),
            "us-east-1",
            BUCKET,
            ACCESS_KEY,
            SECRET_KEY,
        );
        c.allow_http = true;
        c.prefix = prefix.to_owned();
        c
    }

    /// A plain `object_store` client of the bucket, to look behind the media store's back.
    pub fn raw(&self) -> object_store::aws::AmazonS3 {
        raw_client(&self.config(""))
    }

    /// Every object in the bucket, and any multipart upload state s3s-fs still holds.
    pub fn everything(&self) -> futures_util::future::BoxFuture<'static, Vec<String>> {
        let root = self.root.clone();
        let store = self.raw();
        Box::pin(async move {
            let mut names: Vec<String> = store
                .list(None)
                .map(|m| m.unwrap().location.to_string())
                .collect()
                .await;
            for e in std::fs::read_dir(&root).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.contains("upload") || name.starts_with(".tmp.") {
                    names.push(format!("(s3s-fs) {name}"));
                }
            }
            names.sort();
            names
        })
    }
}

fn raw_client(config: &S3Config) -> object_store::aws::AmazonS3 {
    // reqwest needs a process default provider, which S3MediaStore::new would install.
    let _ = rustls::crypto::ring::default_provider().install_default();
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(config.endpoint.clone().unwrap())
        .with_region(&config.region)
        .with_bucket_name(&config.bucket)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(config.secret_access_key.as_str())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap()
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An S3 media store under a setting-like prefix, on a server of its own.
pub async fn s3_subject() -> Subject {
    let server = Arc::new(S3Server::start());
    let store = S3MediaStore::new(&server.config("settings/test")).unwrap();
    store.prepare().await.unwrap();
    let look = server.clone();
    Subject {
        store: Arc::new(store),
        everything: Box::new(move || look.everything()),
        guard: Box::new(server),
    }
}

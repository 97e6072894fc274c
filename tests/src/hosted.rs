//! A hosted deployment for the cross-process tests: one Postgres database (a fresh one on the
//! server `scripts/with-postgres.sh` runs, from `SPRIG_TEST_DATABASE_URL`), one S3-compatible
//! object store (an `s3s-fs` process over a temporary folder, from `SPRIG_S3S_FS` or
//! `~/.cache/sprig-tools/bin/s3s-fs`), one setting made with `init --database-url` at host name
//! `localhost`, and several `sprig-server serve` replicas over both, each on its own loopback
//! port, all with the same `--public-url`.
//!
//! The devices reach the replicas through one [`Proxy::balance`] in front of them — the load
//! balancer of a real deployment, and its one public URL `https://localhost:PORT`. TLS stays end
//! to end: every replica presents the setting's certificate (issued for `localhost`, chosen by
//! the TLS server name), so a device enrolled at the balancer verifies whichever replica it
//! reaches. The test picks the replica of each connection with [`Proxy::set_route`]; a killed
//! replica's connections go to another, as a balancer's retry on connect failure does.
//!
//! Without Postgres or s3s-fs these fail, with a message saying how to get them; they never skip.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sprig_server::store::pg_testing::{fresh_database, test_database_url};
use sprig_server::{PgPool, PgStore};

use crate::proxy::Proxy;
use crate::{Admin, Proc, bins, free_port, spawn_listening};

/// The bucket the replicas keep media in (a folder of s3s-fs's root).
pub const BUCKET: &str = "sprig-media";
/// The prefix inside the bucket (`--media s3://BUCKET/PREFIX`).
pub const PREFIX: &str = "deploy";
const ACCESS_KEY: &str = "sprig-e2e-access";
const SECRET_KEY: &str = "sprig-e2e-secret-key";

/// An `s3s-fs` process over a temporary folder, killed when dropped.
#[derive(Debug)]
pub struct S3Fs {
    _proc: Proc,
    /// Its root folder: a bucket is a sub-folder, an object a file under it.
    pub root: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Fs {
    /// Starts s3s-fs over `dir/s3` with bucket [`BUCKET`], on a free port.
    ///
    /// # Panics
    /// If the binary is missing or it does not start.
    #[must_use]
    pub fn start(dir: &Path) -> S3Fs {
        let bin = std::env::var_os("SPRIG_S3S_FS").map_or_else(
            || {
                let home = std::env::var_os("HOME").map_or_else(|| "/root".into(), PathBuf::from);
                home.join(".cache/sprig-tools/bin/s3s-fs")
            },
            PathBuf::from,
        );
        assert!(
            bin.exists(),
            "s3s-fs, the S3 server these tests run against, is not at {}: run `make s3s-fs` \
             (make test does) or point SPRIG_S3S_FS at the binary",
            bin.display()
        );
        let root = dir.join("s3");
        std::fs::create_dir_all(root.join(BUCKET)).expect("the bucket's folder");
        let log = dir.join("s3s-fs.log");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("s3s-fs log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut proc = Proc::new(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(proc.child().try_wait(), Ok(None)) {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Fs {
                        _proc: proc,
                        root,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "s3s-fs did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

/// One `sprig-server serve` replica: a fixed loopback port (kept across restarts) and, while
/// started, its process.
#[derive(Debug)]
pub struct Replica {
    port: u16,
    log: PathBuf,
    proc: Option<Proc>,
}

impl Replica {
    /// `127.0.0.1:PORT`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether it runs (started and not killed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Its log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A hosted deployment of one setting: database, object store, replicas and the balancer the
/// devices reach them through.
#[derive(Debug)]
pub struct Hosted {
    /// The deployment's database (`postgres://…/sprig_test_…`).
    pub database_url: String,
    /// The setting's id (a UUID), from `init`.
    pub setting_id: String,
    /// `sha256:<hex>` of the setting CA, from `init`.
    pub fingerprint: String,
    /// Its admin commands (`--database-url URL`), as an operator runs them beside the replicas.
    pub cli: Admin,
    /// The object store.
    pub s3: S3Fs,
    /// The load balancer in front of the replicas.
    pub balancer: Proxy,
    replicas: Vec<Replica>,
}

impl Hosted {
    /// A fresh database and object store under `root`, the setting "Acorn Pre-School" at
    /// `localhost`, and `replicas` replicas (not started) behind a balancer seeded with `seed`.
    ///
    /// # Panics
    /// Without Postgres or s3s-fs, or if `init` fails.
    #[must_use]
    pub fn init(root: &Path, replicas: usize, seed: u64) -> Hosted {
        let database_url =
            fresh_database(&test_database_url(), false).expect("a fresh test database");
        let s3 = S3Fs::start(root);
        let cli = Admin::new(&["--database-url", &database_url]);
        let init = cli
            .run(&[
                "init",
                "--name",
                "Acorn Pre-School",
                "--hostname",
                "localhost",
            ])
            .json();
        let replicas: Vec<Replica> = (0..replicas)
            .map(|i| Replica {
                port: free_port(),
                log: root.join(format!("replica-{i}.log")),
                proc: None,
            })
            .collect();
        let balancer = Proxy::balance(replicas.iter().map(Replica::addr).collect(), seed);
        Hosted {
            database_url,
            setting_id: init["setting_id"].as_str().expect("setting_id").to_owned(),
            fingerprint: init["ca_fingerprint"]
                .as_str()
                .expect("fingerprint")
                .to_owned(),
            cli,
            s3,
            balancer,
            replicas,
        }
    }

    /// The public URL, `https://localhost:PORT` of the balancer: what devices enrol at.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.balancer.addr().port())
    }

    /// Replica `i`.
    #[must_use]
    pub fn replica(&self, i: usize) -> &Replica {
        &self.replicas[i]
    }

    /// Starts every replica that is not running.
    pub fn start_all(&mut self) {
        for i in 0..self.replicas.len() {
            if !self.replicas[i].is_running() {
                self.start(i);
            }
        }
    }

    /// Starts replica `i` (`serve --database-url URL --media s3://BUCKET/PREFIX --s3-endpoint
    /// E --listen 127.0.0.1:PORT --public-url URL`) and waits until it accepts connections.
    ///
    /// # Panics
    /// If it is running, or exits or does not listen within 30 s.
    pub fn start(&mut self, i: usize) {
        let public = self.url();
        let r = &mut self.replicas[i];
        assert!(r.proc.is_none(), "replica {i} already runs");
        let mut cmd = Command::new(&bins().server);
        cmd.args(["serve", "--database-url", &self.database_url])
            .args(["--media", &format!("s3://{BUCKET}/{PREFIX}")])
            .args(["--s3-endpoint", &self.s3.endpoint])
            .args(["--listen", &r.addr().to_string(), "--public-url", &public])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        r.proc = spawn_listening(&mut cmd, &r.log, r.port);
        assert!(
            r.proc.is_some(),
            "replica {i} did not start on port {}; log: {}",
            r.port,
            r.log()
        );
    }

    /// Kills replica `i` with SIGKILL (no shutdown path runs) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.replicas[i].proc.take() {
            p.kill();
        }
    }

    /// The setting's store in the deployment's database, read as a replica reads it (safe
    /// while replicas run: the database is the shared truth).
    ///
    /// # Panics
    /// If the database cannot be reached.
    #[must_use]
    pub fn store(&self) -> PgStore {
        let id = uuid_of(&self.setting_id);
        PgPool::open(&self.database_url)
            .and_then(|p| p.setting(id))
            .expect("the setting's store")
    }

    /// The folder s3s-fs keeps the setting's media objects in (`PREFIX/settings/ID/media/`
    /// of the bucket).
    #[must_use]
    pub fn media_dir(&self) -> PathBuf {
        self.s3
            .root
            .join(BUCKET)
            .join(PREFIX)
            .join("settings")
            .join(&self.setting_id)
            .join("media")
    }

    /// The file s3s-fs keeps the setting's media object `sha` (hex) in.
    #[must_use]
    pub fn media_object(&self, sha: &str) -> PathBuf {
        self.media_dir().join(sha)
    }
}

fn uuid_of(s: &str) -> uuid::Uuid {
    s.parse().expect("init printed a UUID")
}

//! The harness of Sprig's cross-process tests: the real `sprig-server` and `sprig-device`
//! binaries, run as child processes on loopback.
//!
//! [`bins`] builds the binaries once per test process (`cargo build --workspace --all-features
//! --bins`, the features `make test` builds with, so a no-op there) into the target directory
//! the test itself was built in, so `cargo test --workspace --all-features --test e2e` and `make
//! test` work from a fresh clone and never run stale binaries. [`Server`] is a data directory
//! plus an optional `serve` process on a free port; [`DeviceDir`] is one tablet's data directory
//! driven through `sprig-device`. Every process is killed when its owner is dropped, so a
//! failing test leaves nothing running.
//! [`proxy::Proxy`] sits between devices and server and injects seeded network faults.
//!
//! `sprig-device` keeps its database key in the OS keystore: run these tests under
//! `scripts/with-keystore.sh` (as `make test` does).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod hosted;
pub mod proxy;

/// Paths of the two binaries under test.
#[derive(Debug)]
pub struct Bins {
    /// `sprig-server`.
    pub server: PathBuf,
    /// `sprig-device`.
    pub device: PathBuf,
}

/// The workspace root (this package lives in `<root>/tests`).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Builds the workspace's binaries (`sprig-server` and `sprig-device` among them) once per
/// process, next to the running test binary (`<target>/<profile>/deps/e2e-…` →
/// `<target>/<profile>/`), and returns the paths of those two.
///
/// # Panics
/// If the build fails.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // <target>/<profile>/deps/<test binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps")
            .to_owned();
        let target_dir = profile_dir.parent().expect("<target>").to_owned();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The variables cargo sets for this test run describe this package; build scripts that
        // watch them (ring watches CARGO_MANIFEST_DIR) would otherwise see a change between this
        // build and `cargo test`'s own, and each would rebuild the TLS stack for the other.
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n == "OUT_DIR"
                || n == "CARGO_MANIFEST_DIR"
                || n == "CARGO_MANIFEST_PATH"
                || n == "CARGO_PRIMARY_PACKAGE"
                || n == "CARGO_TARGET_TMPDIR"
                || n == "CARGO_CRATE_NAME"
                || n == "CARGO_RUSTC_CURRENT_DIR"
                || n.starts_with("CARGO_PKG_")
                || n.starts_with("CARGO_BIN_")
            {
                cmd.env_remove(&name);
            }
        }
        // The same selection as `make test`'s (`cargo test --workspace --all-features`, and the
        // Makefile's WORKSPACE_BINS): a narrower one (`-p sprig-server`) resolves other features
        // and would compile the server and its dependencies a second time, minutes on 2 cores,
        // while every test of this binary waits for it.
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "--workspace", "--all-features"])
            .args(["--bins", "--target-dir"])
            .arg(&target_dir);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building the binaries failed: {cmd:?}");
        let bins = Bins {
            server: profile_dir.join(format!("sprig-server{}", std::env::consts::EXE_SUFFIX)),
            device: profile_dir.join(format!("sprig-device{}", std::env::consts::EXE_SUFFIX)),
        };
        assert!(bins.server.is_file(), "{} missing", bins.server.display());
        assert!(bins.device.is_file(), "{} missing", bins.device.display());
        bins
    })
}

/// A command's outcome, with the contract checks of the CLIs: on success one JSON value on
/// stdout; on failure nothing on stdout and one line on stderr.
#[derive(Debug)]
pub struct Run {
    /// What was run (for messages).
    pub what: String,
    /// Its output.
    pub output: Output,
}

impl Run {
    /// True when it exited with 0.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    /// Its stderr, lossily.
    #[must_use]
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The JSON value it printed.
    ///
    /// # Panics
    /// If it failed or did not print exactly one JSON value on one line.
    #[must_use]
    pub fn json(&self) -> Value {
        assert!(
            self.ok(),
            "{} failed ({}): {}",
            self.what,
            self.output.status,
            self.stderr()
        );
        let text = String::from_utf8_lossy(&self.output.stdout);
        assert_eq!(
            text.trim().lines().count(),
            1,
            "{}: one JSON line expected, got {text:?}",
            self.what
        );
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text:?}", self.what))
    }

    /// The one-line error it printed.
    ///
    /// # Panics
    /// If it succeeded, printed on stdout, or wrote more than one line on stderr.
    #[must_use]
    pub fn error(&self) -> String {
        assert!(
            !self.ok(),
            "{} should have failed but printed {}",
            self.what,
            String::from_utf8_lossy(&self.output.stdout)
        );
        assert!(
            self.output.stdout.is_empty(),
            "{}: nothing on stdout when failing",
            self.what
        );
        let err = self.stderr();
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{}: one line on stderr expected: {err:?}",
            self.what
        );
        err.trim_end().to_owned()
    }
}

fn run(program: &Path, args: &[&str]) -> Run {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Run {
        what: format!("{name} {}", args.join(" ")),
        output,
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Proc(Option<Child>);

impl Proc {
    /// Wraps a spawned child.
    #[must_use]
    pub fn new(child: Child) -> Proc {
        Proc(Some(child))
    }

    /// The child, while it has not been reaped.
    ///
    /// # Panics
    /// After [`Proc::kill`] or [`Proc::wait_timeout`] returned its output.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("process already reaped")
    }

    /// SIGKILL and reap; nothing if already gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for the process to exit and returns its output (stdout/stderr when
    /// they were piped); kills it and returns `None` when it did not exit in time.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<Output> {
        let start = Instant::now();
        loop {
            match self.child().try_wait() {
                Ok(Some(_)) => {
                    return self.0.take().and_then(|c| c.wait_with_output().ok());
                }
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    self.kill();
                    return None;
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
///
/// # Panics
/// If no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A setting's server: its data directory (made by `sprig-server init`) and, while started, a
/// `sprig-server serve` process on a fixed loopback port (kept across restarts).
#[derive(Debug)]
pub struct Server {
    /// The data directory.
    pub data: PathBuf,
    /// `sha256:<hex>` of the setting CA, from `init`.
    pub fingerprint: String,
    cli: Admin,
    port: u16,
    log: PathBuf,
    proc: Option<Proc>,
}

/// The admin commands of one setting: `sprig-server ARGS AT --json`, where `AT` says where the
/// setting lives (`--data DIR`, or `--database-url URL` of a hosted deployment).
#[derive(Debug, Clone)]
pub struct Admin {
    at: Vec<String>,
}

impl Admin {
    /// The commands of the setting at `at` (e.g. `["--data", DIR]`).
    #[must_use]
    pub fn new(at: &[&str]) -> Admin {
        Admin {
            at: at.iter().map(|&a| a.to_owned()).collect(),
        }
    }

    /// Runs `sprig-server ARGS AT --json`.
    #[must_use]
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(self.at.iter().map(String::as_str));
        all.push("--json");
        run(&bins().server, &all)
    }

    /// `staff add` → the staff id.
    #[must_use]
    pub fn staff(&self, name: &str, role: &str, pin: &str) -> String {
        let mut args = vec!["staff", "add", "--name", name, "--role", role, "--pin", pin];
        if role == "manager" {
            args.extend(["--password", "a-long-manager-password"]);
        }
        id_of(&self.run(&args).json())
    }

    /// `child add` (room Acorns) → the child id.
    #[must_use]
    pub fn child(&self, name: &str, key_worker: &str, consent: bool) -> String {
        let consent = if consent { "yes" } else { "no" };
        id_of(
            &self
                .run(&[
                    "child",
                    "add",
                    "--name",
                    name,
                    "--key-worker",
                    key_worker,
                    "--room",
                    "Acorns",
                    "--photo-consent",
                    consent,
                ])
                .json(),
        )
    }

    /// `enrol-code --device-name NAME [--ttl TTL]` → its JSON.
    #[must_use]
    pub fn enrol_code(&self, name: &str, ttl: Option<&str>) -> Value {
        let mut args = vec!["enrol-code", "--device-name", name];
        if let Some(t) = ttl {
            args.extend(["--ttl", t]);
        }
        self.run(&args).json()
    }

    /// `device list` → its rows.
    #[must_use]
    pub fn devices(&self) -> Vec<Value> {
        self.run(&["device", "list"])
            .json()
            .as_array()
            .expect("an array")
            .clone()
    }
}

impl Server {
    /// `sprig-server init` in `root/server`.
    ///
    /// # Panics
    /// If init fails.
    #[must_use]
    pub fn init(root: &Path) -> Server {
        let data = root.join("server");
        let v = run(
            &bins().server,
            &[
                "init",
                "--data",
                path_str(&data),
                "--name",
                "Acorn Pre-School",
                "--json",
            ],
        )
        .json();
        let fingerprint = v["ca_fingerprint"]
            .as_str()
            .expect("fingerprint")
            .to_owned();
        Server {
            cli: Admin::new(&["--data", path_str(&data)]),
            data,
            fingerprint,
            port: 0,
            log: root.join("server.log"),
            proc: None,
        }
    }

    /// Runs `sprig-server ARGS --data DIR --json` (an admin command).
    #[must_use]
    pub fn admin(&self, args: &[&str]) -> Run {
        self.cli.run(args)
    }

    /// `staff add` → the staff id.
    #[must_use]
    pub fn staff(&self, name: &str, role: &str, pin: &str) -> String {
        self.cli.staff(name, role, pin)
    }

    /// `child add` → the child id.
    #[must_use]
    pub fn child(&self, name: &str, key_worker: &str, consent: bool) -> String {
        self.cli.child(name, key_worker, consent)
    }

    /// `enrol-code --device-name NAME [--ttl TTL]` → its JSON.
    #[must_use]
    pub fn enrol_code(&self, name: &str, ttl: Option<&str>) -> Value {
        self.cli.enrol_code(name, ttl)
    }

    /// `device list` → its rows.
    #[must_use]
    pub fn devices(&self) -> Vec<Value> {
        self.cli.devices()
    }

    /// `https://127.0.0.1:PORT` (the port is chosen at the first [`Server::start`]).
    #[must_use]
    pub fn url(&self) -> String {
        assert_ne!(self.port, 0, "start the server first");
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` (the port is chosen at the first [`Server::start`]).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        assert_ne!(self.port, 0, "start the server first");
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether `serve` is running (started and not killed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Starts `serve` (on a free port the first time, on the same port afterwards) and waits
    /// until it accepts connections.
    ///
    /// # Panics
    /// If it exits or does not listen within 30 s.
    pub fn start(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let fixed = self.port != 0;
        for _attempt in 0..5 {
            if !fixed {
                self.port = free_port();
            }
            if self.try_start() {
                return;
            }
            assert!(
                !fixed,
                "the server did not restart on port {}; log: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        panic!(
            "the server did not start; log: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn try_start(&mut self) -> bool {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&bins().server);
        cmd.args(["serve", "--data", path_str(&self.data), "--listen", &listen]);
        self.proc = spawn_listening(&mut cmd, &self.log, self.port);
        self.proc.is_some()
    }

    /// Kills `serve` with SIGKILL (no shutdown path runs) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The stored copy of a media item: `media/ab/abcd…`.
    #[must_use]
    pub fn media_path(&self, sha256_hex: &str) -> PathBuf {
        self.data
            .join("media")
            .join(&sha256_hex[..2])
            .join(sha256_hex)
    }
}

/// Spawns `cmd` (a `sprig-server serve`; stderr appended to `log`) and waits until it accepts
/// connections on `127.0.0.1:port`. `None` when it exited first (e.g. the port was taken
/// meanwhile) or did not listen within 30 s.
///
/// # Panics
/// If the log cannot be opened or the process cannot be spawned.
#[must_use]
pub fn spawn_listening(cmd: &mut Command, log: &Path, port: u16) -> Option<Proc> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("server log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning sprig-server serve");
    let mut proc = Proc::new(child);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for _ in 0..600 {
        if let Ok(Some(_)) = proc.child().try_wait() {
            return None;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Someone listens; make sure it is this process (a `serve` that could not bind
            // exits at once), not another test's server that took the port meanwhile.
            std::thread::sleep(Duration::from_millis(100));
            if let Ok(Some(_)) = proc.child().try_wait() {
                return None;
            }
            return Some(proc);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// One tablet: a data directory driven through `sprig-device`.
#[derive(Debug, Clone)]
pub struct DeviceDir {
    /// The data directory.
    pub dir: PathBuf,
}

impl DeviceDir {
    /// A device whose data will live in `dir` (not created until enrolment).
    #[must_use]
    pub fn new(dir: PathBuf) -> DeviceDir {
        DeviceDir { dir }
    }

    /// Runs `sprig-device CMD --data DIR ARGS --json`.
    #[must_use]
    pub fn cmd(&self, cmd: &str, args: &[&str]) -> Run {
        let mut all = vec![cmd, "--data", path_str(&self.dir)];
        all.extend(args);
        all.push("--json");
        run(&bins().device, &all)
    }

    /// Spawns `sprig-device sync --data DIR --json` without waiting (stdout/stderr piped).
    ///
    /// # Panics
    /// If it cannot be spawned.
    #[must_use]
    pub fn spawn_sync(&self) -> Proc {
        Proc::new(
            Command::new(&bins().device)
                .args(["sync", "--data", path_str(&self.dir), "--json"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning sprig-device sync"),
        )
    }

    /// `enrol` with the code JSON from `enrol-code`, at `url` → the device id.
    pub fn enrol(&self, url: &str, code: &Value) -> String {
        let run = self.enrol_with(
            url,
            code["code"].as_str().expect("code"),
            code["ca_fingerprint"].as_str().expect("fingerprint"),
        );
        run.json()["device_id"]
            .as_str()
            .expect("device_id")
            .to_owned()
    }

    /// `enrol` with explicit values (for refusals).
    #[must_use]
    pub fn enrol_with(&self, url: &str, code: &str, fingerprint: &str) -> Run {
        self.cmd(
            "enrol",
            &[
                "--server",
                url,
                "--code",
                code,
                "--ca-fingerprint",
                fingerprint,
            ],
        )
    }

    /// `sync` → its report.
    pub fn sync(&self) -> Value {
        self.cmd("sync", &[]).json()
    }

    /// `status` → its JSON.
    #[must_use]
    pub fn status(&self) -> Value {
        self.cmd("status", &[]).json()
    }

    /// `journal` of `child` as `staff` → its items.
    #[must_use]
    pub fn journal(&self, staff: &str, pin: &str, child: &str) -> Vec<Value> {
        self.cmd(
            "journal",
            &["--staff", staff, "--pin", pin, "--child", child],
        )
        .json()
        .as_array()
        .expect("an array")
        .clone()
    }

    /// `observe` → the entry id.
    pub fn observe(
        &self,
        staff: &str,
        pin: &str,
        children: &[&str],
        text: &str,
        photos: &[&Path],
    ) -> String {
        self.observe_run(staff, pin, children, text, photos).json()["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// `observe`, its raw outcome.
    #[must_use]
    pub fn observe_run(
        &self,
        staff: &str,
        pin: &str,
        children: &[&str],
        text: &str,
        photos: &[&Path],
    ) -> Run {
        let mut args = vec!["--staff", staff, "--pin", pin, "--text", text];
        for c in children {
            args.extend(["--child", c]);
        }
        for p in photos {
            args.extend(["--photo", path_str(p)]);
        }
        self.cmd("observe", &args)
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// A path as `&str` (test paths are temporary directories, always UTF-8 here).
///
/// # Panics
/// On a non-UTF-8 path.
#[must_use]
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// Every regular file under `dir`, recursively.
#[must_use]
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The seed of a randomised test: `SPRIG_E2E_SEED` when set, else fresh; printed so a failure
/// can be replayed with `SPRIG_E2E_SEED=<seed>`.
#[must_use]
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SPRIG_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        });
    eprintln!("{test}: seed {seed} (replay with SPRIG_E2E_SEED={seed})");
    seed
}

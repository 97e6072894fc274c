//! The parents' portal benchmark (docs/BENCHMARKS.md, "Parents' portal"), run through
//! `benches/portal.sh`: N parents over the year-sized setting, the real `sprig-server serve`
//! process on loopback, HTTPS clients (hyper + rustls, the setting CA as the only root).
//!
//! - page latency: one parent fetches the first journal page (and an older one) sequentially
//!   over one kept-alive connection, beside the portal's `/` on the same connection;
//! - load: N parents at once, each its own connection and cookie, loop on their child's first
//!   journal page for D seconds, beside the same load on `/`; server CPU and peak RSS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sprig_core::{ChildId, GroupMembers, ParentId, parent_view_of};
use sprig_proto::DocId;
use sprig_server::docs::{AnyDoc, compact, load_doc};
use sprig_server::{DataDir, ServerStore, admin};

use crate::{copy_dir, ensure_setting, percentile};

/// What `sprig-bench-sync portal` is asked to do.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Working directory (the setting and the setting with parents are built once and reused).
    #[arg(long)]
    work: PathBuf,
    /// The `sprig-server` binary to run (built with the portal UI inside).
    #[arg(long)]
    server_bin: PathBuf,
    #[arg(long, default_value_t = 60)]
    children: usize,
    #[arg(long, default_value_t = 300)]
    per_child: usize,
    /// Parents, each linked to one child, spread evenly over the children.
    #[arg(long, default_value_t = 500)]
    parents: usize,
    /// Sequential requests of each kind in the page-latency part.
    #[arg(long, default_value_t = 500)]
    page_requests: usize,
    /// The older page measured beside the first (1 = the second page), or the last one there is.
    #[arg(long, default_value_t = 10)]
    old_page: usize,
    /// Seconds of each concurrent load.
    #[arg(long, default_value_t = 20)]
    secs: u64,
}

fn password(i: usize) -> String {
    format!("bench parent {i} long pass phrase")
}

fn email(i: usize) -> String {
    format!("parent{i:04}@bench.example")
}

/// The setting with `parents` parents added through `admin::parent_add` (cached beside it),
/// copied for this run: a run writes sessions, agreements and consent answers.
fn prepare(a: &Args) -> Result<(DataDir, Vec<String>)> {
    let s = ensure_setting(&a.work, a.children, a.per_child)?;
    let cached = a.work.join(format!(
        "portal-{}x{}-p{}",
        a.children, a.per_child, a.parents
    ));
    let marker = cached.join("bench-parents.json");
    if !marker.is_file() {
        let t = Instant::now();
        let building = a
            .work
            .join(format!("portal-building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        copy_dir(s.data.root(), &building)?;
        let data = DataDir::new(&building);
        let store = data.open_store()?;
        for i in 0..a.parents {
            let child = s.children[i % s.children.len()].to_string();
            admin::parent_add(
                &store,
                &email(i),
                &format!("Parent {i:04}"),
                &password(i),
                &[child],
            )?;
            // A live server compacts a document every few writes; so does this.
            if i % 50 == 49 {
                compact(&store, &DocId::Roster)?;
            }
        }
        compact(&store, &DocId::Roster)?;
        drop(store);
        let children: Vec<String> = s.children.iter().map(ToString::to_string).collect();
        std::fs::write(
            building.join("bench-parents.json"),
            serde_json::to_vec(&children)?,
        )?;
        let _ = std::fs::remove_dir_all(&cached);
        std::fs::rename(&building, &cached)?;
        eprintln!(
            "portal: added {} parents in {:.1} s",
            a.parents,
            t.elapsed().as_secs_f64()
        );
    }
    let children: Vec<String> = serde_json::from_slice(&std::fs::read(&marker)?)?;
    let run = a.work.join(format!("portal-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    copy_dir(&cached, &run)?;
    Ok((DataDir::new(&run), children))
}

/// The server process; killed when dropped.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn start(bin: &Path, data: &DataDir, log: &Path) -> Result<ServerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data")
            .arg(data.root())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let p = ServerProcess { child, port };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the server did not listen on port {port} (see {})",
            log.display()
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak and current resident memory of `pid`, MB.
fn rss(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |k: &str| -> f64 {
        s.lines()
            .find_map(|l| {
                l.strip_prefix(k)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_secs(pid: u32, hz: f64) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / hz
}

/// The machine's 1-minute load average, as /proc/loadavg gives it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn tls_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A browser-like client: one kept-alive HTTPS connection (opened again when it closes) and
/// one cookie jar, same-origin requests.
struct Client {
    port: u16,
    cfg: Arc<rustls::ClientConfig>,
    send: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
}

impl Client {
    fn new(port: u16, cfg: Arc<rustls::ClientConfig>) -> Client {
        Client {
            port,
            cfg,
            send: None,
            cookie: None,
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let tls = tokio_rustls::TlsConnector::from(self.cfg.clone())
            .connect(ServerName::try_from("localhost")?, tcp)
            .await
            .context("TLS handshake")?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        self.send = Some(send);
        Ok(())
    }

    /// One request; the status and the whole body.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(hyper::StatusCode, Bytes)> {
        if self.send.as_ref().is_none_or(SendRequest::is_closed) {
            self.connect().await?;
        }
        let Some(send) = self.send.as_mut() else {
            bail!("no connection");
        };
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/json")
            .header("content-length", bytes.len().to_string());
        if let Some(c) = &self.cookie {
            b = b.header("cookie", c);
        }
        let sent = async {
            send.ready().await?;
            let res = send
                .send_request(b.body(Full::new(Bytes::from(bytes)))?)
                .await?;
            let status = res.status();
            let cookies: Vec<String> = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let body = res.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, cookies, body))
        }
        .await;
        let (status, cookies, body) = match sent {
            Ok(r) => r,
            Err(e) => {
                self.send = None;
                return Err(e);
            }
        };
        for c in cookies {
            let pair = c.split(';').next().unwrap_or_default().to_owned();
            self.cookie = (!c.contains("Max-Age=0") && !pair.ends_with('=')).then_some(pair);
        }
        Ok((status, body))
    }

    /// A call that must answer `want`.
    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        want: u16,
    ) -> Result<Bytes> {
        let (status, b) = self.call(method, path, body).await?;
        if status.as_u16() != want {
            bail!(
                "{method} {path}: {status}, not {want}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        Ok(b)
    }
}

/// Sign-in, the agreement and (for each child's first parent) the consent answer, all
/// through the API.
async fn onboard(c: &mut Client, i: usize, child: &str, answer_consent: bool) -> Result<()> {
    let body = serde_json::json!({"email": email(i), "password": password(i)});
    c.expect("POST", "/api/v1/session", Some(body), 200).await?;
    let a: serde_json::Value =
        serde_json::from_slice(&c.expect("GET", "/api/v1/agreement", None, 200).await?)?;
    let version = serde_json::json!({"version": a["version"]});
    c.expect("POST", "/api/v1/agreement", Some(version), 204)
        .await?;
    if answer_consent {
        let path = format!("/api/v1/children/{child}/consent");
        let answer = serde_json::json!({"photo_consent": true});
        c.expect("POST", &path, Some(answer), 204).await?;
    }
    Ok(())
}

fn journal_path(child: &str, before: Option<&str>) -> String {
    match before {
        Some(b) => format!("/api/v1/children/{child}/journal?before={b}"),
        None => format!("/api/v1/children/{child}/journal"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(v: &[f64]) -> String {
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(v, 0.5),
        percentile(v, 0.99),
        percentile(v, 1.0)
    )
}

/// What one concurrent load saw.
#[derive(Debug, Default)]
struct Load {
    ok: Vec<f64>,
    errors: BTreeMap<String, usize>,
    secs: f64,
}

/// Every client loops on its path for `secs` seconds, all at once. Each opens a fresh
/// connection (its TLS handshake) before the clock starts.
async fn load(clients: Vec<Client>, paths: &[String], secs: u64) -> (Vec<Client>, Load) {
    let n = clients.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(paths.iter().cloned())
        .map(|(mut c, path)| {
            let barrier = barrier.clone();
            let mut go = go_rx.clone();
            tokio::spawn(async move {
                let mut out = Load::default();
                if let Err(e) = c.connect().await {
                    *out.errors.entry(format!("connect: {e:#}")).or_default() += 1;
                }
                barrier.wait().await;
                let _ = go.changed().await;
                let Some(start) = *go.borrow() else {
                    return (c, out);
                };
                let end = start + Duration::from_secs(secs);
                while Instant::now() < end {
                    let t = Instant::now();
                    match c.call("GET", &path, None).await {
                        Ok((s, _)) if s == hyper::StatusCode::OK => out.ok.push(ms(t.elapsed())),
                        Ok((s, b)) => {
                            let code = serde_json::from_slice::<serde_json::Value>(&b)
                                .ok()
                                .and_then(|v| v["code"].as_str().map(str::to_owned))
                                .unwrap_or_default();
                            *out.errors.entry(format!("{s} {code}")).or_default() += 1;
                        }
                        Err(e) => {
                            *out.errors.entry(format!("{e:#}")).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (c, out)
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let _ = go_tx.send(Some(start));
    let mut all = Load::default();
    let mut back = Vec::with_capacity(n);
    for t in tasks {
        if let Ok((c, out)) = t.await {
            back.push(c);
            all.ok.extend(out.ok);
            for (k, v) in out.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
    }
    all.secs = start.elapsed().as_secs_f64();
    (back, all)
}

/// `sprig-bench-sync portal`.
pub fn run(a: &Args) -> Result<()> {
    std::fs::create_dir_all(&a.work)?;
    let (data, children) = prepare(a)?;
    let ca_pem = std::fs::read_to_string(data.ca_cert())?;
    let cfg = tls_config(&ca_pem)?;
    let server = ServerProcess::start(&a.server_bin, &data, &a.work.join("portal-server.log"))?;
    // One thread drives every client, so that the server keeps the other core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(bench(a, &server, &data, &children, &cfg));
    drop(server);
    let _ = std::fs::remove_dir_all(data.root());
    result
}

async fn bench(
    a: &Args,
    server: &ServerProcess,
    data: &DataDir,
    children: &[String],
    cfg: &Arc<rustls::ClientConfig>,
) -> Result<()> {
    let pid = server.pid();
    let hz = clock_ticks();
    let (hwm0, rss0) = rss(pid);
    println!(
        "portal server: pid {pid}, RSS idle {rss0:.1} MB (peak so far {hwm0:.1} MB); {} parents over {} children x {} observations",
        a.parents,
        children.len(),
        a.per_child
    );

    // Everyone signs in and accepts the agreement, and each child's first parent (parents are
    // dealt to the children in turn) answers consent; four at a time, since each sign-in is
    // an Argon2id check on the server.
    let t = Instant::now();
    let cpu0 = cpu_secs(pid, hz);
    let mut clients = Vec::with_capacity(a.parents);
    let mut paths = Vec::with_capacity(a.parents);
    let mut pending = Vec::new();
    for i in 0..a.parents {
        let child = children[i % children.len()].clone();
        paths.push(journal_path(&child, None));
        let mut c = Client::new(server.port, cfg.clone());
        let first = i < children.len();
        pending.push(tokio::spawn(async move {
            let r = onboard(&mut c, i, &child, first).await;
            c.send = None;
            r.map(|()| c)
        }));
        if pending.len() == 4 || i + 1 == a.parents {
            for p in pending.drain(..) {
                clients.push(p.await.context("onboarding task")??);
            }
        }
    }
    let (hwm1, _) = rss(pid);
    println!(
        "portal onboarding: {} parents signed in and accepted the agreement, consent answered for {} children, in {:.1} s (server CPU {:.1} s); server peak RSS so far {hwm1:.1} MB",
        clients.len(),
        children.len().min(a.parents),
        t.elapsed().as_secs_f64(),
        cpu_secs(pid, hz) - cpu0
    );

    page_latency(a, &mut clients[0], &children[0]).await?;
    profile(data, &children[0])?;

    // The concurrent loads: the anchor (the portal's `/`) first, then the journal, so that
    // each peak RSS reading belongs to what ran before it.
    let statics = vec!["/".to_owned(); clients.len()];
    for (name, paths) in [("static /", &statics), ("journal page 1", &paths)] {
        // Reset the peak (Linux: clear_refs 5), so that each phase's peak is its own, not the
        // sign-ins' (each Argon2id check holds 19 MiB).
        let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let (_, before) = rss(pid);
        let cpu_before = cpu_secs(pid, hz);
        let (back, l) = load(clients, paths, a.secs).await;
        let cpu = cpu_secs(pid, hz) - cpu_before;
        let (hwm, now) = rss(pid);
        clients = back;
        #[allow(clippy::cast_precision_loss)]
        let rps = l.ok.len() as f64 / l.secs;
        let errs: usize = l.errors.values().sum();
        println!(
            "portal load {name:<15} {} clients, {:.1} s: {rps:.0} req/s ({} ok), {}; errors {errs}; server CPU {cpu:.1} s ({:.0} % of one core), RSS {before:.1} MB before, {now:.1} MB after, peak (VmHWM{}) {hwm:.1} MB; load average {}",
            a.parents,
            l.secs,
            l.ok.len(),
            stats(&l.ok),
            100.0 * cpu / l.secs,
            if reset {
                ", this phase"
            } else {
                " since start"
            },
            loadavg()
        );
        for (k, v) in &l.errors {
            println!("portal load {name:<15} error x{v}: {k}");
        }
    }
    Ok(())
}

/// Where a journal page's time goes: the steps the handler takes (`view_of` in the portal's
/// api.rs), timed one by one in this process through the libraries, on the same data (median
/// of 20 each). Not timed here: the session's load and save and the agreement check (SQLite),
/// sorting, JSON.
fn profile(data: &DataDir, child: &str) -> Result<()> {
    let store = data.open_store()?;
    let child = ChildId::parse(child)?;
    let parent = ParentId::parse(&store.parent_by_email(&email(0))?.context("parent 0")?)?;
    let reps = 20;
    let mut t = [const { Vec::new() }; 5];
    for _ in 0..reps {
        let t0 = Instant::now();
        let AnyDoc::Roster(roster) = load_doc(&store, &DocId::Roster)? else {
            bail!("the roster is not a roster");
        };
        let t1 = Instant::now();
        let AnyDoc::Journal(journal) = load_doc(&store, &DocId::Journal(child.clone()))? else {
            bail!("the journal is not a journal");
        };
        let t2 = Instant::now();
        let entries = journal.entries();
        let groups = entries.iter().any(|e| e.group.is_some());
        let t3 = Instant::now();
        let view = parent_view_of(&child, &entries, &roster, &parent, &GroupMembers::default())?;
        let t4 = Instant::now();
        std::hint::black_box((groups, view.entries.len()));
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)]
            .into_iter()
            .enumerate()
        {
            t[k].push(ms(b - a));
        }
    }
    let m = |k: usize| percentile(&t[k], 0.5);
    println!(
        "portal profile (in-process, median of {reps}): roster load_doc {:.2} ms + journal load_doc {:.2} ms + entries() {:.2} ms + projection (parent_view_of) {:.2} ms = {:.2} ms of the handler's work",
        m(0),
        m(1),
        m(2),
        m(3),
        m(4)
    );
    Ok(())
}

/// One parent, one connection, sequentially: the first journal page, an older page and the
/// portal's `/`, interleaved so that the machine's load falls on all three alike.
async fn page_latency(a: &Args, c: &mut Client, child: &str) -> Result<()> {
    let first = journal_path(child, None);
    let page: serde_json::Value =
        serde_json::from_slice(&c.expect("GET", &first, None, 200).await?)?;
    let size = |p: &serde_json::Value| p["entries"].as_array().map_or(0, Vec::len);
    let first_bytes = serde_json::to_vec(&page)?.len();
    println!(
        "portal page: the first page holds {} entries ({first_bytes} bytes of JSON); the API's page size is fixed (no size parameter)",
        size(&page)
    );
    // Walk to the older page.
    let (mut old, mut cur, mut n) = (first.clone(), page, 0);
    while n < a.old_page {
        let Some(next) = cur["next"].as_str().map(str::to_owned) else {
            break;
        };
        old = journal_path(child, Some(&next));
        cur = serde_json::from_slice(&c.expect("GET", &old, None, 200).await?)?;
        n += 1;
    }
    println!(
        "portal page: older page = page {} ({} entries)",
        n + 1,
        size(&cur)
    );
    let kinds = [
        ("static /", "/".to_owned()),
        ("journal page 1", first),
        ("journal older page", old),
    ];
    let mut times = vec![Vec::with_capacity(a.page_requests); kinds.len()];
    // Warm-up, not counted.
    for (_, path) in &kinds {
        for _ in 0..5 {
            c.expect("GET", path, None, 200).await?;
        }
    }
    for _ in 0..a.page_requests {
        for (k, (_, path)) in kinds.iter().enumerate() {
            let t = Instant::now();
            c.expect("GET", path, None, 200).await?;
            times[k].push(ms(t.elapsed()));
        }
    }
    for (k, (name, _)) in kinds.iter().enumerate() {
        println!(
            "portal page {name:<19} {} sequential requests, one connection: {} (load average {})",
            times[k].len(),
            stats(&times[k]),
            loadavg()
        );
    }
    let (p50, p99) = (percentile(&times[1], 0.5), percentile(&times[1], 0.99));
    let verdict = |v: f64| if v <= 20.0 { "met" } else { "MISSED" };
    println!(
        "portal page target <= 20 ms: first journal page p50 {p50:.2} ms ({}), p99 {p99:.2} ms ({})",
        verdict(p50),
        verdict(p99)
    );
    Ok(())
}

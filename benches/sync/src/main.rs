//! Sprig's sync benchmarks (docs/BENCHMARKS.md, "Sync"). Run through `benches/sync.sh`.
//!
//! - `first-sync`: a new device pulls a year of a 60-child setting (real server over mutual TLS
//!   on loopback, real `Device` with its SQLCipher store); time and bytes.
//! - `latency`: an observation recorded on device A, visible on device B after both sync.
//! - `setup-load` + `load`: D light clients (`ClientSession` over `MemoryDocs`, the device's wire
//!   protocol over mutual TLS) pull every journal from a running `sprig-server serve`, for the
//!   side-by-side comparison with automerge-repo-sync-server.
//! - `portal`: N parents over the same setting against a `sprig-server serve` process: journal
//!   page latency and N concurrent parents, each beside the portal's static `/` (`portal.rs`).
//!
//! Anything that opens a `Device` needs the OS keystore: run under `scripts/with-keystore.sh`.

mod client;
mod portal;
mod setting;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sprig_core::{Journal, StaffId};
use sprig_device::{Device, Enrolment, Observation};
use sprig_proto::{DocId, DocSet, MemoryDocs};
use sprig_server::docs::DeviceDocs;
use sprig_server::{DataDir, ServeConfig, ServerStore, admin};

use crate::setting::{Creds, PIN};

#[derive(Parser, Debug)]
#[command(about = "Sprig sync benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// First full sync of freshly enrolled devices.
    FirstSync {
        /// Working directory (the setting is built once per size and reused).
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 60)]
        children: usize,
        #[arg(long, default_value_t = 300)]
        per_child: usize,
        /// Timed runs, each with a new device.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// A's new observation visible on B after A syncs then B syncs.
    Latency {
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 60)]
        children: usize,
        #[arg(long, default_value_t = 300)]
        per_child: usize,
        #[arg(long, default_value_t = 100)]
        iters: usize,
        /// Stop earlier once this many seconds have been spent in the loop.
        #[arg(long, default_value_t = 300)]
        max_secs: u64,
    },
    /// Builds a server data directory, D device credentials and the journals as files.
    SetupLoad {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        creds: PathBuf,
        #[arg(long)]
        export: PathBuf,
        #[arg(long, default_value_t = 60)]
        children: usize,
        #[arg(long, default_value_t = 50)]
        per_child: usize,
        #[arg(long, default_value_t = 10)]
        devices: usize,
    },
    /// Builds a year-sized setting in a server data directory and prints the staff and
    /// children ids as JSON (the tablet app benchmark, benches/app.sh).
    SetupSetting {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 60)]
        children: usize,
        #[arg(long, default_value_t = 300)]
        per_child: usize,
    },
    /// The parents' portal: page latency and N concurrent parents (benches/portal.sh).
    Portal(portal::Args),
    /// D clients pull every journal from a running server, concurrently, `rounds` times.
    Load {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        creds: PathBuf,
        #[arg(long, default_value_t = 10)]
        devices: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::FirstSync {
            work,
            children,
            per_child,
            runs,
        } => first_sync(&work, children, per_child, runs),
        Cmd::Latency {
            work,
            children,
            per_child,
            iters,
            max_secs,
        } => latency(&work, children, per_child, iters, max_secs),
        Cmd::SetupLoad {
            data,
            creds,
            export,
            children,
            per_child,
            devices,
        } => setup_load(&data, &creds, &export, children, per_child, devices),
        Cmd::Load {
            port,
            creds,
            devices,
            rounds,
        } => load(port, &creds, devices, rounds),
        Cmd::Portal(a) => portal::run(&a),
        Cmd::SetupSetting {
            data,
            children,
            per_child,
        } => {
            let built = setting::build(&DataDir::new(&data), children, per_child, None)?;
            println!(
                "{}",
                serde_json::json!({
                    "staff": built.staff.to_string(),
                    "pin": PIN,
                    "children": built.children.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "entries": built.entries,
                })
            );
            Ok(())
        }
    }
}

// ---- shared -----------------------------------------------------------------------------------

/// A setting of the given size under `work`, built on first use.
struct Setting {
    data: DataDir,
    staff: StaffId,
    children: Vec<sprig_core::ChildId>,
}

fn ensure_setting(work: &Path, children: usize, per_child: usize) -> Result<Setting> {
    let root = work.join(format!("server-{children}x{per_child}"));
    let data = DataDir::new(&root);
    let ids_file = root.join("bench-ids.json");
    if !ids_file.is_file() {
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        let b = setting::build(&data, children, per_child, None)?;
        let ids = serde_json::json!({
            "staff": b.staff.to_string(),
            "children": b.children.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "entries": b.entries,
            "text_chars": b.text_chars,
        });
        std::fs::write(&ids_file, serde_json::to_vec(&ids)?)?;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&ids_file)?)?;
    let staff = StaffId::parse(v["staff"].as_str().unwrap_or_default())?;
    let children = v["children"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| sprig_core::ChildId::parse(c.as_str()?).ok())
                .collect()
        })
        .unwrap_or_default();
    eprintln!(
        "setting: {} ({} entries, {} text chars)",
        root.display(),
        v["entries"],
        v["text_chars"]
    );
    Ok(Setting {
        data,
        staff,
        children,
    })
}

/// The real server (`sprig_server::serve`) on 127.0.0.1:0 on its own 2-thread runtime.
struct Server {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Server {
    fn start(data: &DataDir) -> Result<Server> {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
        );
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cfg = ServeConfig::new(data.clone());
        let rt2 = rt.clone();
        let thread = std::thread::spawn(move || {
            let r = rt2.block_on(serve_until(listener, cfg, stopped));
            if let Err(e) = r {
                eprintln!("server failed: {e}");
            }
        });
        Ok(Server {
            port,
            stop: Some(stop),
            thread: Some(thread),
            rt,
        })
    }

    /// A TCP proxy on 127.0.0.1:0 in front of the server that counts bytes each way (TLS
    /// records, WebSocket framing and all).
    fn counting_proxy(&self) -> Result<(u16, Arc<[AtomicU64; 2]>)> {
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let target = self.port;
        let c = counts.clone();
        self.rt.spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = out.into_split();
                    tokio::join!(pump(ri, wo, &c[0]), pump(ro, wi, &c[1]));
                });
            }
        });
        Ok((port, counts))
    }
}

/// Copies one direction of a proxied connection, counting as it goes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: &AtomicU64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

async fn serve_until(
    listener: tokio::net::TcpListener,
    cfg: ServeConfig,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), sprig_server::ServeError> {
    sprig_server::serve(listener, cfg, async {
        let _ = stopped.await;
    })
    .await
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Enrols a new device in `dir` over the real enrolment endpoint.
fn enrol(data: &DataDir, port: u16, dir: &Path, name: &str) -> Result<Device> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let store = data.open_store()?;
    let code = admin::enrol_code(
        data,
        &store,
        name,
        Duration::from_secs(600),
        &sprig_server::By::cli(),
    )?;
    Device::enrol(
        dir,
        &Enrolment {
            server_url: format!("https://localhost:{port}"),
            code: code.code,
            ca_fingerprint: code.ca_fingerprint,
            device_name: name.into(),
        },
    )?;
    Ok(Device::open(dir)?)
}

/// The protocol bytes the server recorded in its audit log for `device`'s latest sync:
/// (from the device, to the device).
fn audited_bytes(data: &DataDir, device: &str) -> Result<(u64, u64)> {
    let store = data.open_store()?;
    let ev = store
        .audit_log(200)?
        .into_iter()
        .find(|e| e.action == "sync" && e.device.as_deref() == Some(device))
        .context("no sync in the audit log")?;
    let field = |k: &str| -> u64 {
        ev.detail
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("bytes_in"), field("bytes_out")))
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// Nearest-rank percentile.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn mb(b: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let f = b as f64;
    f / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---- first sync -------------------------------------------------------------------------------

fn first_sync(work: &Path, children: usize, per_child: usize, runs: usize) -> Result<()> {
    std::fs::create_dir_all(work)?;
    let s = ensure_setting(work, children, per_child)?;
    let server = Server::start(&s.data)?;
    let pid = std::process::id();
    let mut times = Vec::new();
    let mut proto_bytes = (0, 0);
    for run in 0..runs {
        let dir = work.join(format!("device-{pid}-{run}"));
        let mut dev = enrol(&s.data, server.port, &dir, &format!("bench tablet {run}"))?;
        let t = Instant::now();
        let rep = dev.sync()?;
        let el = t.elapsed();
        let st = dev.status()?;
        let id = st.device_id.clone().unwrap_or_default();
        let (bin, bout) = audited_bytes(&s.data, &id)?;
        proto_bytes = (bin, bout);
        if st.journals != children as u64 {
            bail!("the device holds {} journals, not {children}", st.journals);
        }
        println!(
            "first-sync run {run}: {:.0} ms, docs_changed {}, protocol bytes to device {bout} ({:.2} MB), from device {bin}",
            ms(el),
            rep.docs_changed,
            mb(bout)
        );
        times.push(ms(el));
        if run + 1 < runs {
            drop(dev);
            std::fs::remove_dir_all(&dir)?;
        } else {
            // Check the content of the last device: one journal, complete.
            let who = dev.unlock(&s.staff, PIN)?;
            let n = dev.journal(&who, &s.children[0])?.len();
            if n < per_child {
                bail!("journal 0 holds {n} entries on the device, not {per_child}");
            }
            drop(dev);
            std::fs::remove_dir_all(&dir)?;
        }
    }

    // Wire bytes (TLS + WebSocket + HTTP upgrade) through a counting proxy, one more device.
    let (pport, counts) = server.counting_proxy()?;
    let dir = work.join(format!("device-{pid}-proxy"));
    let mut dev = enrol(&s.data, pport, &dir, "bench tablet proxied")?;
    let before = [
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    ];
    dev.sync()?;
    drop(dev);
    std::thread::sleep(Duration::from_millis(300));
    let wire_up = counts[0].load(Ordering::Relaxed) - before[0];
    let wire_down = counts[1].load(Ordering::Relaxed) - before[1];
    std::fs::remove_dir_all(&dir)?;

    // Rough profile: where a first sync's time goes.
    let store: Arc<dyn ServerStore> = Arc::new(s.data.open_store()?);
    let t = Instant::now();
    let mut docs = DeviceDocs::new(store.clone(), "profile");
    let listed = docs.list()?;
    let t_list = t.elapsed();
    let t = Instant::now();
    let mut snaps = Vec::new();
    for d in &listed {
        snaps.push((d.doc.clone(), docs.snapshot(&d.doc)?));
    }
    let t_snap = t.elapsed();
    let snap_bytes: usize = snaps.iter().map(|(_, b)| b.len()).sum();
    let t = Instant::now();
    for (d, b) in &snaps {
        if let DocId::Journal(_) = d {
            Journal::load(b)?;
        }
    }
    let t_load = t.elapsed();
    let creds = setting::register_device(&s.data, &s.data.open_store()?, "profile client")?;
    let cfg = client::tls_config(&creds)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut mem = MemoryDocs::new();
    let t = Instant::now();
    let pulled = rt.block_on(client::pull(server.port, &creds.device_id, cfg, &mut mem))?;
    let t_mem = t.elapsed();
    drop(server);

    let med = median(&times);
    println!(
        "first-sync: {children} journals x {per_child} = {} observations; {runs} fresh devices; median {med:.0} ms (min {:.0}, max {:.0}); target <= 3000 ms: {}",
        children * per_child,
        percentile(&times, 0.0),
        percentile(&times, 1.0),
        if med <= 3000.0 { "met" } else { "MISSED" }
    );
    println!(
        "first-sync bytes: protocol {:.2} MB to the device, {:.3} MB from it (audit log); on the wire {:.2} MB down, {:.3} MB up (TLS, counting proxy)",
        mb(proto_bytes.1),
        mb(proto_bytes.0),
        mb(wire_down),
        mb(wire_up)
    );
    println!(
        "first-sync profile: server list (stored heads) {:.0} ms + stored bytes of every doc {:.0} ms ({:.2} MB); Journal::load of all of them {:.0} ms; light client (MemoryDocs) full pull over mTLS {:.0} ms ({} docs); so the device store (SQLCipher + index) ~ {:.0} ms of the median",
        ms(t_list),
        ms(t_snap),
        mb(snap_bytes as u64),
        ms(t_load),
        ms(t_mem),
        pulled.docs,
        med - ms(t_mem)
    );
    Ok(())
}

// ---- latency ---------------------------------------------------------------------------------

fn latency(
    work: &Path,
    children: usize,
    per_child: usize,
    iters: usize,
    max_secs: u64,
) -> Result<()> {
    std::fs::create_dir_all(work)?;
    let mut s = ensure_setting(work, children, per_child)?;
    let pid = std::process::id();
    // The loop adds observations: work on a copy, so the shared setting stays as built.
    let copy = work.join(format!("latency-server-{pid}"));
    copy_dir(s.data.root(), &copy)?;
    s.data = DataDir::new(&copy);
    let server = Server::start(&s.data)?;
    let dir_a = work.join(format!("device-{pid}-A"));
    let dir_b = work.join(format!("device-{pid}-B"));
    let mut a = enrol(&s.data, server.port, &dir_a, "tablet A")?;
    let mut b = enrol(&s.data, server.port, &dir_b, "tablet B")?;
    a.sync()?;
    b.sync()?;
    let who_a = a.unlock(&s.staff, PIN)?;
    let who_b = b.unlock(&s.staff, PIN)?;
    // B keeps its watch connection open, as the app does while it is open and online: the
    // server tells it when A's observation is stored, and B syncs then.
    let mut watching = b.watch()?;
    let mut rng = setting::Rng::new(99);
    let (mut sync_a, mut sync_b, mut read_b, mut total, mut observe, mut notice) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let start = Instant::now();
    for i in 0..iters {
        if start.elapsed() > Duration::from_secs(max_secs) {
            eprintln!("latency: time budget of {max_secs} s reached after {i} iterations");
            break;
        }
        let child = s.children[i % s.children.len()].clone();
        let t = Instant::now();
        let id = a.observe(
            &who_a,
            &Observation {
                children: vec![child.clone()],
                text: setting::observation_text(&mut rng),
                ..Observation::default()
            },
        )?;
        observe.push(ms(t.elapsed()));
        let t0 = Instant::now();
        a.sync()?;
        let t1 = Instant::now();
        if watching.next(Duration::from_secs(10))?.is_none() {
            bail!("iteration {i}: device B was not told of A's observation within 10 s");
        }
        let tn = Instant::now();
        b.sync()?;
        let t2 = Instant::now();
        let seen = b
            .journal(&who_b, &child)?
            .iter()
            .any(|it| it.entry.id == id);
        let t3 = Instant::now();
        if !seen {
            bail!("iteration {i}: the observation is not on device B after both synced");
        }
        sync_a.push(ms(t1 - t0));
        notice.push(ms(tn - t1));
        sync_b.push(ms(t2 - tn));
        read_b.push(ms(t3 - t2));
        total.push(ms(t3 - t0));
    }
    drop(watching);
    drop((a, b));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
    let _ = std::fs::remove_dir_all(&copy);
    let row = |name: &str, v: &[f64]| {
        println!(
            "latency {name:<28} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            percentile(v, 0.5),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    };
    println!(
        "latency: {} iterations, {children} journals x {per_child} observations on both devices",
        total.len()
    );
    row("A sync + notice + B sync + read", &total);
    row("  A sync (upload)", &sync_a);
    row("  B hears of it (watch)", &notice);
    row("  B sync (download)", &sync_b);
    row("  B reads the journal", &read_b);
    row("(A records, not counted)", &observe);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

// ---- load -------------------------------------------------------------------------------------

fn setup_load(
    data: &Path,
    creds: &Path,
    export: &Path,
    children: usize,
    per_child: usize,
    devices: usize,
) -> Result<()> {
    let dir = DataDir::new(data);
    setting::build(&dir, children, per_child, Some(export))?;
    let store = dir.open_store()?;
    std::fs::create_dir_all(creds)?;
    for i in 0..devices {
        let c = setting::register_device(&dir, &store, &format!("load client {i}"))?;
        let v = serde_json::json!({
            "device_id": c.device_id, "cert_pem": c.cert_pem, "key_pem": c.key_pem, "ca_pem": c.ca_pem,
        });
        std::fs::write(creds.join(format!("dev-{i}.json")), serde_json::to_vec(&v)?)?;
    }
    std::fs::write(
        export.join("meta.json"),
        serde_json::to_vec(&serde_json::json!({"children": children, "per_child": per_child}))?,
    )?;
    Ok(())
}

fn read_creds(path: &Path) -> Result<Creds> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let f = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(Creds {
        device_id: f("device_id"),
        cert_pem: f("cert_pem"),
        key_pem: f("key_pem"),
        ca_pem: f("ca_pem"),
    })
}

fn load(port: u16, creds: &Path, devices: usize, rounds: usize) -> Result<()> {
    let all: Vec<(Creds, Arc<rustls::ClientConfig>)> = (0..devices)
        .map(|i| {
            let c = read_creds(&creds.join(format!("dev-{i}.json")))?;
            let cfg = client::tls_config(&c)?;
            Ok((c, cfg))
        })
        .collect::<Result<_>>()?;
    // One thread for every client, like the Node driver.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for round in 0..rounds {
        let mut replicas: Vec<MemoryDocs> = (0..devices).map(|_| MemoryDocs::new()).collect();
        let t = Instant::now();
        let results = rt.block_on(futures_util::future::join_all(
            all.iter()
                .zip(replicas.iter_mut())
                .map(|((c, cfg), docs)| client::pull(port, &c.device_id, cfg.clone(), docs)),
        ));
        let el = t.elapsed().as_secs_f64();
        let mut docs = 0;
        let (mut bytes, mut bytes_up) = (0, 0);
        for r in results {
            let p = r?;
            docs += p.docs;
            bytes += p.bytes_in;
            bytes_up += p.bytes_out;
        }
        let entries: usize = replicas
            .iter()
            .flat_map(|m| m.journals.values())
            .map(Journal::len)
            .sum();
        #[allow(clippy::cast_precision_loss)]
        let (dps, eps) = (docs as f64 / el, entries as f64 / el);
        println!(
            "{}",
            serde_json::json!({
                "server": "sprig", "round": round, "devices": devices, "docs": docs,
                "entries": entries, "seconds": el, "docs_per_s": dps, "entries_per_s": eps,
                "bytes_to_clients": bytes, "bytes_from_clients": bytes_up,
            })
        );
    }
    Ok(())
}

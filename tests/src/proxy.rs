//! A fault-injecting TCP proxy for the cross-process tests: it listens on `127.0.0.1:0`, forwards
//! every connection to the server and, per connection, decides from a seeded schedule what the
//! "network" does to it.
//!
//! The proxy sees only bytes: TLS stays end to end between device and server, so a device that
//! enrols at [`Proxy::url`] verifies the server's real certificate (issued for `127.0.0.1`).
//!
//! Per connection (the `n`-th one accepted gets a [`Fate`] drawn from `seed` and `n` alone, so a
//! device that makes the same connections meets the same faults on a replay):
//! - [`Fate::Pass`]: forwarded untouched;
//! - [`Fate::Delay`]: every chunk held back a few milliseconds and written in small pieces;
//! - [`Fate::Cut`]: both directions closed once a random number of bytes has gone one way (the
//!   TLS handshake, the middle of a sync message, the middle of an upload or of its answer);
//! - [`Fate::Refuse`]: accepted and closed at once, the server never sees it;
//! - [`Fate::Stall`]: nothing forwarded for a while (packets dropped), then closed.
//!
//! [`Proxy::balance`] puts one proxy in front of several servers (the replicas of a hosted
//! deployment behind one public URL): each connection goes to the upstream its [`Route`] names,
//! and, when that one refuses the connection (killed), to the next that accepts, as a load
//! balancer's retry on connect failure does (nginx's `proxy_next_upstream error`, `HAProxy`'s
//! `option redispatch`).
//!
//! Independently of the fates, [`Proxy::arm`] holds the next connection that reaches a byte
//! offset in one direction until [`Proxy::release`]: the test kills the server or the device at
//! exactly that point of the exchange, then lets the proxy carry on (into a dead peer).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the device to the server.
    Up,
    /// From the server to the device.
    Down,
}

/// What the proxy does to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Forwarded untouched.
    Pass,
    /// Each chunk delayed by up to `max_ms` and written in pieces of at most `piece` bytes.
    Delay {
        /// The longest delay before a chunk, in milliseconds.
        max_ms: u64,
        /// The largest piece written at once.
        piece: usize,
    },
    /// Both directions closed once `after` bytes have gone `dir` (the byte at `after` is never
    /// delivered).
    Cut {
        /// The direction whose byte count decides.
        dir: Direction,
        /// Bytes delivered in that direction before the cut.
        after: u64,
    },
    /// Accepted and closed at once; the server never sees it.
    Refuse,
    /// Nothing forwarded for `ms` milliseconds, then closed; the server never sees it.
    Stall {
        /// How long the device is left waiting.
        ms: u64,
    },
}

/// Which upstream a [`Proxy::balance`] proxy sends new connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Each new connection to the next upstream in turn.
    RoundRobin,
    /// Every new connection to this upstream (by index), while it accepts connections.
    To(usize),
}

/// What the proxy did, summed over its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Connections given [`Fate::Pass`] (all of them while faults are off).
    pub passed: u64,
    /// Connections given [`Fate::Delay`].
    pub delayed: u64,
    /// Connections given [`Fate::Cut`].
    pub cut_planned: u64,
    /// Cuts carried out after a device → server byte offset.
    pub cut_up: u64,
    /// Cuts carried out after a server → device byte offset.
    pub cut_down: u64,
    /// Connections given [`Fate::Refuse`].
    pub refused: u64,
    /// Connections given [`Fate::Stall`].
    pub stalled: u64,
    /// Connections closed because no server could be reached (all were down).
    pub server_down: u64,
    /// Connections sent to another upstream than their route's, which refused them.
    pub redispatched: u64,
    /// Times a connection was held at an armed offset (see [`Proxy::arm`]).
    pub held: u64,
    /// Bytes delivered to the server.
    pub bytes_up: u64,
    /// Bytes delivered to the devices.
    pub bytes_down: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.connections += o.connections;
        self.passed += o.passed;
        self.delayed += o.delayed;
        self.cut_planned += o.cut_planned;
        self.cut_up += o.cut_up;
        self.cut_down += o.cut_down;
        self.refused += o.refused;
        self.stalled += o.stalled;
        self.server_down += o.server_down;
        self.redispatched += o.redispatched;
        self.held += o.held;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
    }
}

#[derive(Debug, Default)]
struct AtomicCounters {
    connections: AtomicU64,
    passed: AtomicU64,
    delayed: AtomicU64,
    cut_planned: AtomicU64,
    cut_up: AtomicU64,
    cut_down: AtomicU64,
    refused: AtomicU64,
    stalled: AtomicU64,
    server_down: AtomicU64,
    redispatched: AtomicU64,
    held: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: g(&self.connections),
            passed: g(&self.passed),
            delayed: g(&self.delayed),
            cut_planned: g(&self.cut_planned),
            cut_up: g(&self.cut_up),
            cut_down: g(&self.cut_down),
            refused: g(&self.refused),
            stalled: g(&self.stalled),
            server_down: g(&self.server_down),
            redispatched: g(&self.redispatched),
            held: g(&self.held),
            bytes_up: g(&self.bytes_up),
            bytes_down: g(&self.bytes_down),
        }
    }
}

/// The hold point armed by [`Proxy::arm`].
#[derive(Debug, Default)]
struct Hold {
    armed: Option<(Direction, u64)>,
    held: bool,
    release: bool,
}

#[derive(Debug)]
struct Shared {
    upstreams: Vec<SocketAddr>,
    /// The [`Route`]: an upstream's index, or [`ROUND_ROBIN`].
    route: AtomicU64,
    /// Connections routed round-robin so far.
    turn: AtomicU64,
    /// Connections delivered to each upstream.
    served: Vec<AtomicU64>,
    seed: u64,
    /// Probability (as `f64` bits) that a connection meets a fault at all.
    fault_rate: AtomicU64,
    next_conn: AtomicU64,
    counters: AtomicCounters,
    stop: AtomicBool,
    hold: Mutex<Hold>,
    hold_cv: Condvar,
    /// A handle on every open connection's sockets, to close them all when the proxy goes.
    sockets: Mutex<HashMap<u64, Vec<TcpStream>>>,
}

impl Shared {
    fn hold(&self) -> MutexGuard<'_, Hold> {
        self.hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sockets(&self) -> MutexGuard<'_, HashMap<u64, Vec<TcpStream>>> {
        self.sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn track(&self, n: u64, s: &TcpStream) {
        if let Ok(c) = s.try_clone() {
            self.sockets().entry(n).or_default().push(c);
        }
    }
}

/// A fault-injecting proxy in front of one server address; stops (closing every connection) when
/// dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// [`Shared::route`]'s value for [`Route::RoundRobin`].
const ROUND_ROBIN: u64 = u64::MAX;

/// SplitMix64: decorrelates the per-connection seeds drawn from one schedule seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`, faults off until
    /// [`Proxy::set_fault_rate`].
    ///
    /// # Panics
    /// If it cannot listen.
    #[must_use]
    pub fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        Proxy::balance(vec![upstream], seed)
    }

    /// Listens on `127.0.0.1:0` and forwards each connection to one of `upstreams`, round-robin
    /// until [`Proxy::set_route`], faults off until [`Proxy::set_fault_rate`].
    ///
    /// # Panics
    /// If `upstreams` is empty or it cannot listen.
    #[must_use]
    pub fn balance(upstreams: Vec<SocketAddr>, seed: u64) -> Proxy {
        assert!(!upstreams.is_empty(), "a proxy needs an upstream");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            served: upstreams.iter().map(|_| AtomicU64::new(0)).collect(),
            upstreams,
            route: AtomicU64::new(ROUND_ROBIN),
            turn: AtomicU64::new(0),
            seed,
            fault_rate: AtomicU64::new(0f64.to_bits()),
            next_conn: AtomicU64::new(0),
            counters: AtomicCounters::default(),
            stop: AtomicBool::new(false),
            hold: Mutex::new(Hold::default()),
            hold_cv: Condvar::new(),
            sockets: Mutex::new(HashMap::new()),
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(&listener, &s))
            .expect("spawning the proxy");
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where devices connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`: the server URL to enrol a device with.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The probability that a new connection meets a fault (0 = a plain pipe).
    pub fn set_fault_rate(&self, p: f64) {
        self.shared
            .fault_rate
            .store(p.clamp(0.0, 1.0).to_bits(), Ordering::SeqCst);
    }

    /// What it did so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Where new connections go from now on.
    ///
    /// # Panics
    /// On an index past the upstreams.
    pub fn set_route(&self, route: Route) {
        let v = match route {
            Route::RoundRobin => ROUND_ROBIN,
            Route::To(i) => {
                assert!(i < self.shared.upstreams.len(), "no upstream {i}");
                i as u64
            }
        };
        self.shared.route.store(v, Ordering::SeqCst);
    }

    /// Connections delivered to each upstream so far, by index.
    #[must_use]
    pub fn served(&self) -> Vec<u64> {
        self.shared
            .served
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Holds the first connection whose byte count in `dir` reaches `offset` (the bytes before
    /// it delivered, the rest not yet) until [`Proxy::release`]. Replaces an earlier arming.
    pub fn arm(&self, dir: Direction, offset: u64) {
        let mut h = self.shared.hold();
        h.armed = Some((dir, offset));
    }

    /// Cancels an arming that has not been reached.
    pub fn disarm(&self) {
        self.shared.hold().armed = None;
    }

    /// Whether a connection is being held at the armed offset.
    #[must_use]
    pub fn is_holding(&self) -> bool {
        self.shared.hold().held
    }

    /// Lets a held connection go on (its peers may be dead by now).
    pub fn release(&self) {
        let mut h = self.shared.hold();
        if h.held {
            h.release = true;
            self.shared.hold_cv.notify_all();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let mut h = self.shared.hold();
            h.armed = None;
            h.release = true;
            self.shared.hold_cv.notify_all();
        }
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for s in self.shared.sockets().drain().flat_map(|(_, s)| s) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let n = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                let s = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("proxy-conn-{n}"))
                    .spawn(move || {
                        connection(client, n, &s);
                        s.sockets().remove(&n);
                    });
                if spawned.is_err() {
                    // Out of threads: the connection is dropped, as a congested network would.
                    continue;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The randomness of connection `n`: from the proxy's seed and `n` alone.
fn conn_rng(seed: u64, n: u64) -> StdRng {
    StdRng::seed_from_u64(mix(seed ^ mix(n)))
}

/// A connection's fate, drawn first from its [`conn_rng`].
fn fate(rng: &mut StdRng, fault_rate: f64) -> Fate {
    if !rng.random_bool(fault_rate) {
        return Fate::Pass;
    }
    match rng.random_range(0..10) {
        0..=2 => Fate::Delay {
            max_ms: rng.random_range(1..=15),
            piece: rng.random_range(1..=4096),
        },
        3..=7 => Fate::Cut {
            dir: if rng.random_bool(0.5) {
                Direction::Up
            } else {
                Direction::Down
            },
            // A third inside the TLS handshake (a few KiB), a third in the first messages of
            // a sync session, the rest anywhere in an upload of a photo (tens of KiB) or a
            // sync of many documents; an offset past the end of a connection leaves it whole.
            after: match rng.random_range(0..3) {
                0 => rng.random_range(0..1536),
                1 => rng.random_range(0..6 * 1024),
                _ => rng.random_range(0..32 * 1024),
            },
        },
        8 => Fate::Refuse,
        _ => Fate::Stall {
            ms: rng.random_range(100..=1500),
        },
    }
}

fn connection(client: TcpStream, n: u64, shared: &Arc<Shared>) {
    let c = &shared.counters;
    bump(&c.connections, 1);
    let rate = f64::from_bits(shared.fault_rate.load(Ordering::SeqCst));
    let mut rng = conn_rng(shared.seed, n);
    let fate = fate(&mut rng, rate);
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    shared.track(n, &client);
    match fate {
        Fate::Pass => bump(&c.passed, 1),
        Fate::Delay { .. } => bump(&c.delayed, 1),
        Fate::Cut { .. } => bump(&c.cut_planned, 1),
        Fate::Refuse => {
            bump(&c.refused, 1);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Fate::Stall { ms } => {
            bump(&c.stalled, 1);
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let Some(server) = connect_upstream(shared) else {
        bump(&c.server_down, 1);
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = server.set_nodelay(true);
    shared.track(n, &server);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return;
    };
    let up_seed = rng.random();
    let down_seed = rng.random();
    let s = Arc::clone(shared);
    let up = std::thread::Builder::new()
        .name(format!("proxy-up-{n}"))
        .spawn(move || pump(client, server, Direction::Up, fate, up_seed, &s));
    pump(server2, client2, Direction::Down, fate, down_seed, shared);
    if let Ok(t) = up {
        let _ = t.join();
    }
}

/// A connection to the upstream the route names, or else to the next one that accepts.
fn connect_upstream(shared: &Shared) -> Option<TcpStream> {
    let n = shared.upstreams.len();
    let first = match shared.route.load(Ordering::SeqCst) {
        ROUND_ROBIN => shared.turn.fetch_add(1, Ordering::SeqCst),
        i => i,
    };
    (0..n).find_map(|k| {
        let i = usize::try_from((first + k as u64) % n as u64).unwrap_or(0);
        let s = TcpStream::connect_timeout(&shared.upstreams[i], Duration::from_secs(2)).ok()?;
        if k > 0 {
            bump(&shared.counters.redispatched, 1);
        }
        bump(&shared.served[i], 1);
        Some(s)
    })
}

/// Copies `from` → `to` (bytes flowing `dir`) under `fate`, holding at an armed offset.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Direction,
    fate: Fate,
    seed: u64,
    shared: &Shared,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent: u64 = 0;
    let cut_at = match fate {
        Fate::Cut { dir: d, after } if d == dir => Some(after),
        _ => None,
    };
    let cut_all = |from: &TcpStream, to: &TcpStream| {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                // A clean end one way: pass the half-close on.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                cut_all(&from, &to);
                return;
            }
        };
        let mut chunk = &buf[..n];
        if let Fate::Delay { max_ms, .. } = fate {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=max_ms)));
        }
        // Cut: deliver up to the offset, then close both ways.
        let mut cutting = false;
        if let Some(at) = cut_at
            && sent + chunk.len() as u64 >= at
        {
            chunk = &chunk[..usize::try_from(at - sent).unwrap_or(chunk.len())];
            cutting = true;
        }
        while !chunk.is_empty() {
            // Hold at an armed offset: deliver the bytes before it, wait for the test.
            let mut limit = chunk.len();
            let mut hold_here = false;
            {
                let h = shared.hold();
                if let Some((d, at)) = h.armed
                    && d == dir
                    && sent + chunk.len() as u64 >= at
                    && !h.held
                {
                    limit = usize::try_from(at.saturating_sub(sent)).unwrap_or(limit);
                    hold_here = true;
                }
            }
            let piece = match fate {
                Fate::Delay { piece, .. } => limit.min(piece),
                _ => limit,
            };
            if piece > 0 {
                if to.write_all(&chunk[..piece]).is_err() {
                    cut_all(&from, &to);
                    return;
                }
                sent += piece as u64;
                let c = &shared.counters;
                bump(
                    if dir == Direction::Up {
                        &c.bytes_up
                    } else {
                        &c.bytes_down
                    },
                    piece as u64,
                );
                chunk = &chunk[piece..];
                if piece < limit {
                    continue; // the rest of a delayed chunk, piece by piece
                }
            }
            if hold_here {
                hold_at_offset(shared, dir, sent);
            }
        }
        if cutting {
            let c = &shared.counters;
            bump(
                if dir == Direction::Up {
                    &c.cut_up
                } else {
                    &c.cut_down
                },
                1,
            );
            cut_all(&from, &to);
            return;
        }
    }
}

/// Takes the armed hold (if still armed at this offset: another connection may have won) and
/// waits for [`Proxy::release`].
fn hold_at_offset(shared: &Shared, dir: Direction, sent: u64) {
    let mut h = shared.hold();
    match h.armed {
        Some((d, at)) if d == dir && sent >= at && !h.held => {}
        _ => return,
    }
    h.armed = None;
    h.held = true;
    h.release = false;
    bump(&shared.counters.held, 1);
    shared.hold_cv.notify_all();
    while !h.release {
        h = shared
            .hold_cv
            .wait(h)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    h.held = false;
    h.release = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that counts what it receives: the total, once the peer has closed.
    fn sink() -> (SocketAddr, std::sync::mpsc::Receiver<u64>, Arc<AtomicU64>) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let live = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&live);
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let mut total = 0u64;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n as u64;
                seen.store(total, Ordering::SeqCst);
            }
            let _ = tx.send(total);
        });
        (addr, rx, live)
    }

    #[test]
    fn a_cut_delivers_exactly_the_bytes_before_its_offset() {
        // The first seed whose first connection is cut after 100..20_000 bytes going up.
        let (seed, after) = (0..10_000u64)
            .find_map(|seed| match fate(&mut conn_rng(seed, 0), 1.0) {
                Fate::Cut {
                    dir: Direction::Up,
                    after,
                } if (100..20_000).contains(&after) => Some((seed, after)),
                _ => None,
            })
            .expect("some seed cuts its first connection going up");
        let (upstream, received, _) = sink();
        let proxy = Proxy::start(upstream, seed);
        proxy.set_fault_rate(1.0);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        // More than the offset; writing may fail once the proxy has cut.
        let _ = c.write_all(&vec![7u8; 64 * 1024]);
        let got = received.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(got, after, "seed {seed}");
        let n = proxy.counters();
        assert_eq!((n.connections, n.cut_planned, n.cut_up), (1, 1, 1));
        assert_eq!(n.bytes_up, after);
    }

    #[test]
    fn an_armed_offset_holds_the_connection_until_released() {
        let (upstream, received, live) = sink();
        let proxy = Proxy::start(upstream, 1);
        proxy.arm(Direction::Up, 1000);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(&[1u8; 5000]).unwrap();
        let start = Instant::now();
        while !proxy.is_holding() {
            assert!(start.elapsed() < Duration::from_secs(20), "never held");
            std::thread::sleep(Duration::from_millis(5));
        }
        while live.load(Ordering::SeqCst) < 1000 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "bytes before the hold lost"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            live.load(Ordering::SeqCst),
            1000,
            "bytes past the hold went through"
        );
        proxy.release();
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            received.recv_timeout(Duration::from_secs(20)).unwrap(),
            5000
        );
        let n = proxy.counters();
        assert_eq!((n.passed, n.held, n.bytes_up), (1, 1, 5000));
    }

    #[test]
    fn a_balancer_routes_and_skips_a_dead_upstream() {
        let (a, a_got, _) = sink();
        let (b, b_got, _) = sink();
        let send = |proxy: &Proxy, bytes: usize| {
            let mut c = TcpStream::connect(proxy.addr()).unwrap();
            c.write_all(&vec![3u8; bytes]).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        };
        // Round-robin: the first connection to the first upstream, the next to the second.
        let proxy = Proxy::balance(vec![a, b], 1);
        send(&proxy, 10);
        assert_eq!(a_got.recv_timeout(Duration::from_secs(20)).unwrap(), 10);
        send(&proxy, 20);
        assert_eq!(b_got.recv_timeout(Duration::from_secs(20)).unwrap(), 20);
        assert_eq!(proxy.served(), [1, 1]);
        drop(proxy);

        // Routed to a dead upstream (nothing listens on its port): redispatched to the live one.
        let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        let (live, live_got, _) = sink();
        let proxy = Proxy::balance(vec![dead, live], 2);
        proxy.set_route(Route::To(0));
        send(&proxy, 30);
        assert_eq!(live_got.recv_timeout(Duration::from_secs(20)).unwrap(), 30);
        assert_eq!(proxy.served(), [0, 1]);
        let n = proxy.counters();
        assert_eq!((n.connections, n.redispatched, n.server_down), (1, 1, 0));
    }
}

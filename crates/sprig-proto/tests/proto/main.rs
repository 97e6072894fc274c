//! Integration tests of the sync protocol: in-memory replicas, real Automerge documents.

mod converge;
mod epoch;
mod errors;
mod fuzz;
mod fuzz_replay;
mod wire_format;

use sprig_core::{SettingDoc, Timestamp};
use sprig_proto::{
    ClientInfo, ClientSession, Lease, Limits, MemoryDocs, Message, ServerSession, SessionReport,
    Unsynced, encode,
};
use sprig_testkit::Fixture;

/// A device: its documents and its name (the server's key for its sync states).
#[derive(Debug)]
pub struct Device {
    pub name: String,
    pub docs: MemoryDocs,
}

impl Device {
    pub fn new(name: &str) -> Device {
        Device {
            name: name.to_owned(),
            docs: MemoryDocs::new(),
        }
    }

    pub fn info(&self) -> ClientInfo {
        ClientInfo {
            device_id: self.name.clone(),
            app_version: "0.1.0-test".into(),
            unsynced: Unsynced::default(),
            pin_failures: Vec::new(),
            locked: false,
        }
    }
}

/// The lease a server closes a session with (signature bytes are opaque to the protocol).
pub fn lease_for(device_id: &str) -> Lease {
    Lease {
        device_id: device_id.into(),
        issued_at_ms: SERVER_TIME,
        lock_after_secs: 12 * 3600,
        wipe_after_secs: 90 * 86400,
        max_pin_failures: 10,
        signature: vec![1; 64],
    }
}

pub const T0: Timestamp = Timestamp(1_700_000_000_000);
pub const SERVER_TIME: i64 = 1_700_000_500_000;

/// A server replica holding the fixture's roster, a setting document and `n` empty journals.
pub fn server_docs(fx: &Fixture) -> MemoryDocs {
    MemoryDocs::with_docs(
        fx.roster.clone(),
        SettingDoc::new("Little Acorns Pre-School"),
        (0..fx.children.len()).map(|i| fx.journal(i)),
    )
}

/// Runs one whole session between `server` and `device` with default limits; panics on any
/// error or when it does not end. Returns the client's and the server's reports.
pub fn sync(server: &mut MemoryDocs, device: &mut Device) -> (SessionReport, SessionReport) {
    let mut client = ClientSession::new(device.info(), Limits::default());
    let mut srv = ServerSession::new(Limits::default());
    let mut cdocs = device.docs.peer("server");
    let mut sdocs = server.peer(&device.name);
    let hello = client.start(&mut cdocs).unwrap();
    assert!(srv.receive(&mut sdocs, &hello).unwrap().is_empty());
    assert_eq!(srv.hello().unwrap().device_id, device.name);
    let mut to_client = srv.welcome(&mut sdocs, SERVER_TIME).unwrap();
    let mut exchanges = 0;
    while !to_client.is_empty() {
        exchanges += 1;
        assert!(exchanges < 200, "the session did not end");
        let mut to_server = Vec::new();
        for f in &to_client {
            to_server.extend(client.receive(&mut cdocs, f).unwrap());
        }
        to_client.clear();
        for f in &to_server {
            to_client.extend(srv.receive(&mut sdocs, f).unwrap());
        }
    }
    assert!(srv.is_finished(), "server did not finish");
    assert!(client.is_converged() && !client.is_finished());
    let lease = encode(&Message::Lease(lease_for(&device.name))).unwrap();
    assert!(client.receive(&mut cdocs, &lease).unwrap().is_empty());
    assert!(client.is_finished(), "client did not finish");
    (client.report().clone(), srv.report().clone())
}

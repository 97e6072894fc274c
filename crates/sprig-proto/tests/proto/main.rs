//! Integration tests of the sync protocol: in-memory replicas, real Automerge documents.

mod converge;
mod epoch;
mod errors;
mod fuzz;
mod wire_format;

use sprig_core::{SettingDoc, Timestamp};
use sprig_proto::{
    ClientInfo, ClientSession, Limits, MemoryDocs, ServerSession, SessionReport, Unsynced,
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
        }
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
    assert!(client.is_finished(), "client did not finish");
    assert!(srv.is_finished(), "server did not finish");
    (client.report().clone(), srv.report().clone())
}

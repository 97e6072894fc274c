//! The server's integration tests: a real server on loopback (`serve` on port 0), real TLS,
//! real clients; the admin CLI as a real process; the store suite on SQLite and on Postgres.

mod cli;
mod enrol;
mod lifecycle;
mod media;
mod pg;
mod refusals;
mod serve;
mod store;
mod support;
mod sync;

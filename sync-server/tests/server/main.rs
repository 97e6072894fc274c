//! The server's integration tests: a real server on loopback (`serve` on port 0), real TLS,
//! real clients; the admin CLI as a real process; the store suite on SQLite and on Postgres;
//! the media-store suite on a folder and on a real S3-compatible server (s3s-fs).

mod authority;
mod backup;
mod cli;
mod console;
mod contributions;
mod enrol;
mod hosted;
mod lifecycle;
mod manage;
mod media;
mod media_store;
mod pg;
mod portal;
mod portal_account;
mod ready;
mod refusals;
mod s3;
mod serve;
mod store;
mod support;
mod sync;
mod watch;

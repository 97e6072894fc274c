//! Integration tests of the device API and the `sprig-device` command, on real SQLCipher
//! stores keyed from the real OS keystore (run under `scripts/with-keystore.sh`).

mod app;
mod cli;
mod e2e;
mod lifecycle;
mod observe;
mod rogue;
mod support;
mod unlock;
mod watch;

//! Sprig's sync server: the setting CA and device enrolment ([`ca`]), mutual-TLS WebSocket
//! sync and media over HTTPS ([`serve`]), storage behind [`ServerStore`] ([`SqliteStore`],
//! [`PgStore`]) and media behind [`media_store::MediaStore`] (a folder or an S3 bucket), and
//! the admin operations behind the `sprig-server` CLI ([`admin`]).
//!
//! The HTTP contract is `docs/PROTOCOL-HTTP.md`. Tests run a real server on port 0:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use sprig_server::{DataDir, ServeConfig, admin, serve};
//!
//! let data = DataDir::new("/tmp/sprig-demo");
//! let init = admin::init(&data, "Acorn Pre-School", None)?;
//! println!("pin the CA {}", init.ca_fingerprint);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve(listener, ServeConfig::new(data), async {
//!     let _ = stopped.await;
//! }));
//! // … talk to it …
//! let _ = stop.send(());
//! server.await??;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod by;
pub mod ca;
pub mod config;
pub mod docs;
mod http;
pub mod mail;
pub mod manage;
pub mod media_store;
pub mod monitoring;
pub mod passwords;
pub mod policy;
pub mod store;

pub use admin::{AdminError, DataDir};
pub use by::By;
pub use http::{HostedConfig, ServeConfig, ServeError, serve, serve_hosted};
pub use mail::{MailConfig, MailError};
pub use policy::{Policy, PolicyError};
pub use store::{PgPool, PgStore, ServerStore, SqliteStore, StoreError};

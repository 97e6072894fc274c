//! Sprig's tablet app: a thin Tauri 2 shell over `sprig-device`. It holds the window, the
//! capability files (`capabilities/`), a strict CSP (`tauri.conf.json`), and the
//! `#[tauri::command]` wrappers in [`commands`]; the [`Shell`] keeps what the window needs
//! between commands. No domain rule lives here.
//!
//! The UI's TypeScript types are generated from [`dto`] and the command table below
//! ([`bindings::typescript`]); `cargo test -p sprig-app` fails when the committed file is stale.
//!
//! Data directory: `SPRIG_APP_DATA`, else the platform's app data directory.

pub mod bindings;
mod camera;
pub mod commands;
pub mod dto;
pub mod error;
mod shell;

pub use error::AppError;
pub use shell::Shell;

/// Declares the commands once: the invoke handler and the TypeScript command table are both
/// generated from this list, so they cannot drift apart.
macro_rules! app_commands {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )*) => {
        /// The invoke handler with every command.
        pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(commands::$name),*]
        }

        /// `(name, [(argument, TypeScript type)], TypeScript return type)` of every command.
        #[must_use]
        pub fn command_table() -> Vec<(&'static str, Vec<(&'static str, String)>, String)> {
            let cfg = ts_rs::Config::default();
            vec![$(
                (
                    stringify!($name),
                    vec![$((stringify!($arg), <$ty as ts_rs::TS>::name(&cfg))),*],
                    <$ret as ts_rs::TS>::name(&cfg),
                )
            ),*]
        }
    };
}

/// Raw bytes (a `tauri::ipc::Response`), an `ArrayBuffer` in TypeScript.
#[derive(Debug)]
pub struct Bytes;
impl ts_rs::TS for Bytes {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &ts_rs::Config) -> String {
        "ArrayBuffer".into()
    }
    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
    fn decl(_: &ts_rs::Config) -> String {
        String::new()
    }
    fn decl_concrete(_: &ts_rs::Config) -> String {
        String::new()
    }
}

/// The raw IPC body of `stage_media` (a `Uint8Array`, with header `x-sprig-kind`).
#[derive(Debug)]
pub struct RawBody;
impl ts_rs::TS for RawBody {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &ts_rs::Config) -> String {
        "Uint8Array".into()
    }
    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
    fn decl(_: &ts_rs::Config) -> String {
        String::new()
    }
    fn decl_concrete(_: &ts_rs::Config) -> String {
        String::new()
    }
}

app_commands! {
    app_status() -> dto::AppStatus;
    preview_enrolment(server: String, fingerprint: String) -> dto::EnrolPreviewDto;
    enrol(server: String, code: String, fingerprint: String, device_name: String) -> dto::AppStatus;
    staff_tiles() -> Vec<dto::StaffTileDto>;
    unlock(staff: String, pin: String) -> dto::SessionInfo;
    lock() -> ();
    touch() -> ();
    children() -> Vec<dto::ChildDto>;
    journal(child: String) -> Vec<dto::EntryDto>;
    revisions(child: String, entry: String) -> Vec<dto::RevisionDto>;
    stage_media(body: RawBody) -> dto::StagedMedia;
    discard_media(id: String) -> ();
    observe(observation: dto::NewObservation) -> String;
    publish(entry: String) -> ();
    edit(entry: String, change: dto::EntryChange) -> ();
    reply(entry: String, child: String, text: String) -> String;
    pending() -> Vec<dto::EntryDto>;
    approve(entry: String) -> ();
    reject(entry: String, reason: String) -> ();
    coverage(days: u32) -> dto::CoverageDto;
    thumbnail(sha256: String) -> Bytes;
    media(sha256: String) -> Bytes;
    sync_status() -> dto::SyncStatus;
    sync_now() -> dto::SyncStatus;
    done() -> dto::DoneReport;
}

/// The data directory: `SPRIG_APP_DATA` when set (tests, several instances on one machine),
/// else the platform's per-app data directory.
fn data_dir<R: tauri::Runtime>(app: &tauri::App<R>) -> std::path::PathBuf {
    use tauri::Manager;
    std::env::var_os("SPRIG_APP_DATA").map_or_else(
        || {
            app.path()
                .app_data_dir()
                .unwrap_or_else(|_| std::path::PathBuf::from("sprig-data"))
        },
        std::path::PathBuf::from,
    )
}

/// The app's builder: the shell state, the commands and the window setup (shared by the
/// binary, the mobile entry point and the command tests).
pub fn builder<R: tauri::Runtime>() -> tauri::Builder<R> {
    tauri::Builder::<R>::new()
        .setup(|app| {
            use tauri::Manager;
            let dir = data_dir(app);
            let shell = Shell::new(dir);
            // The OS opens the app with a `sprig://enrol?...` link as its argument.
            if let Some(link) = std::env::args().find(|a| a.starts_with("sprig://enrol?")) {
                shell.set_enrol_link(&link);
            }
            app.manage(shell);
            if let Some(w) = app.get_webview_window("main") {
                camera::allow_camera(&w);
            }
            Ok(())
        })
        .invoke_handler(handler())
}

/// Runs the app (desktop binary and mobile entry point).
///
/// # Panics
/// When the window cannot be created (no display).
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    builder::<tauri::Wry>()
        .run(tauri::generate_context!())
        .expect("the Sprig window could not start");
}

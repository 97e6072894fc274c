fn main() {
    // The UI is built by `make ui` (npm); a fresh clone compiled without it gets a page that
    // says so, so `cargo test --workspace` still builds.
    let dist = std::path::Path::new("../ui/dist/app");
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(dist).expect("ui/dist/app");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><html lang=\"en-GB\"><title>Sprig</title><p>The UI is not built: run <code>make ui</code>.</p></html>\n",
        )
        .expect("placeholder page");
    }
    // The app manifest lists the commands so the capability in capabilities/ can grant exactly
    // them (permissions/app.toml) and nothing else.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "app_status",
            "preview_enrolment",
            "enrol",
            "staff_tiles",
            "unlock",
            "lock",
            "touch",
            "children",
            "journal",
            "revisions",
            "stage_media",
            "discard_media",
            "observe",
            "publish",
            "edit",
            "reply",
            "pending",
            "approve",
            "reject",
            "coverage",
            "thumbnail",
            "media",
            "sync_status",
            "sync_now",
            "done",
        ]),
    ))
    .expect("tauri build script");
}

//! The in-app camera. WebKitGTK ships with `getUserMedia` off and denies every permission
//! request the embedder does not answer (wry answers none on Linux), so the shell turns the
//! media stream on and allows camera and microphone requests from the app's own page only.
//! Everything else (geolocation, notifications, …) is denied. `SPRIG_APP_MOCK_CAMERA=1`
//! gives WebKit's fake capture devices, for tests under Xvfb where no camera exists.
//! Android and iOS ask the user through the system's own prompt (Tauri's camera permission in
//! the platform manifest); nothing here applies to them.

#[cfg(target_os = "linux")]
pub(crate) fn allow_camera<R: tauri::Runtime>(w: &tauri::WebviewWindow<R>) {
    let _ = w.with_webview(|wv| {
        use webkit2gtk::glib::prelude::ObjectExt;
        use webkit2gtk::{PermissionRequestExt, SettingsExt, WebViewExt};
        let view = wv.inner();
        if let Some(settings) = view.settings() {
            settings.set_enable_media_stream(true);
            settings.set_enable_mock_capture_devices(
                std::env::var("SPRIG_APP_MOCK_CAMERA").is_ok_and(|v| v == "1"),
            );
        }
        view.connect_permission_request(|view, request| {
            let own_page = view.uri().is_some_and(|u| {
                u.starts_with("tauri://localhost") || u.starts_with("http://localhost:1420")
            });
            if own_page && request.is::<webkit2gtk::UserMediaPermissionRequest>() {
                request.allow();
            } else {
                request.deny();
            }
            true
        });
    });
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allow_camera<R: tauri::Runtime>(_: &tauri::WebviewWindow<R>) {}

//! The configuration loader on any `tracker.toml`: an error that names the problem, or
//! settings; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker_server::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("tracker.toml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Err(error) = Settings::load(Some(&path)) {
        let _ = error.to_string();
    }
});

//! Where the tests find their data: the project's own fixtures under `tests/fixtures/`, and the
//! real exports the project leads keep beside the repository in `../shared/data/`.
//!
//! One file for every crate's tests (the root's `tests/support`, `sources/tests/common`, the
//! benches include it), so "is the shared data there, and must it be" is decided once:
//!
//! - `KASS_SHARED_DATA` points at another directory instead of `../shared/data`;
//! - without the data a test over it passes after printing a loud `SKIPPED` line, so the
//!   suite runs on a fresh clone;
//! - `KASS_REQUIRE_SHARED_DATA=1` (CI sets it) makes the missing data a failure instead.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// Overrides where the shared data is.
pub const SHARED_DATA_ENV: &str = "KASS_SHARED_DATA";
/// `1` makes tests fail instead of skipping when the shared data is missing.
pub const REQUIRE_SHARED_DATA_ENV: &str = "KASS_REQUIRE_SHARED_DATA";

/// The workspace root: the nearest ancestor of the crate being tested that holds this file.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/support/test_data.rs").is_file())
        .expect("the crate lies inside the kass workspace")
        .to_path_buf()
}

/// A path under the project's own `tests/fixtures/`, e.g. `fixture("slack-export")`.
pub fn fixture(rel: &str) -> PathBuf {
    let path = workspace_root().join("tests/fixtures").join(rel);
    assert!(path.exists(), "fixture {} is missing", path.display());
    path
}

/// The shared data directory: `$KASS_SHARED_DATA`, else `../shared/data` beside the repository.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os(SHARED_DATA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("../shared/data"),
    }
}

/// Whether missing shared data must fail the test (`KASS_REQUIRE_SHARED_DATA=1`).
pub fn shared_data_required() -> bool {
    std::env::var(REQUIRE_SHARED_DATA_ENV).is_ok_and(|v| v.trim() == "1")
}

/// `rel` under the shared data, e.g. `shared_data("slack-export-sample")`, or `None` after a
/// loud `SKIPPED` line when it is missing; panics instead when the data is required. A test
/// over the real data starts with `let Some(path) = shared_data(..) else { return };`.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = shared_data_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !shared_data_required(),
        "{} is missing and {REQUIRE_SHARED_DATA_ENV} is set: the tests over the real exports \
         need ../shared/data beside the repository (or {SHARED_DATA_ENV})",
        path.display()
    );
    // Straight to stderr, past the test harness's capture: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: ../shared/data not found ({} is missing); set {SHARED_DATA_ENV} to its place, \
         or {REQUIRE_SHARED_DATA_ENV}=1 to fail instead",
        path.display()
    );
    None
}

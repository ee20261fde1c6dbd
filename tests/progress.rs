//! A long run whose stderr is not a terminal (a log file, CI, a container) still says how far
//! it is, one log line per interval, instead of nothing until the end.

mod support;

use support::{kass, run_ok, write_example_config};

#[test]
fn a_run_without_a_terminal_logs_progress_at_a_steady_interval() {
    let dir = tempfile::tempdir().unwrap();
    let slack = dir.path().join("slack");
    support::copy_dir(
        &support::repo_root().join("examples/data/slack-export"),
        &slack,
    );
    let config = write_example_config(dir.path(), &slack);
    let out = run_ok(
        kass()
            .env("KASS_PROGRESS_INTERVAL_SECS", "0.005")
            .args(["fetch", "--config"])
            .arg(&config),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("progress")).collect();
    assert!(lines.len() >= 2, "no steady progress lines: {stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("batch files") && l.contains("per_second")),
        "{lines:?}"
    );

    // The default interval (30 s) says nothing in a run this short.
    let quiet = run_ok(kass().args(["fetch", "--full", "--config"]).arg(&config));
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("progress"));
}

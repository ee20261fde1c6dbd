//! A long run whose stderr is not a terminal (a log file, CI, a container) still says how far
//! it is, one log line per interval, instead of nothing until the end; and every run ends with a
//! summary of what it did, a table or (with `--log-format json`) one JSON event.

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
    // Every day file again under COPIES more dates, so the run lasts many intervals however fast
    // the machine: the example alone took 7 ms once the local model's crate was optimised, one
    // 5 ms interval.
    const COPIES: usize = 60;
    for channel in ["general", "dev-help"] {
        let folder = slack.join(channel);
        let days: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        for (d, day) in days.iter().enumerate() {
            for copy in 0..COPIES {
                let date = format!(
                    "{}-{:02}-{:02}.json",
                    2020 + d,
                    1 + copy / 28,
                    1 + copy % 28
                );
                std::fs::copy(day, folder.join(date)).unwrap();
            }
        }
    }
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

    assert!(
        lines.iter().any(|l| l.contains("slack: channels")),
        "the known work, with its total: {lines:?}"
    );
    // The summary, counted where the metrics are: the example's 2 batch files.
    let batches = support::files_under(&dir.path().join("store"))
        .iter()
        .filter(|f| f.contains("/chunked/"))
        .count();
    assert!(stderr.contains("summary"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "chunks         {} in {batches} batch files",
            support::batch_chunk_count(&dir.path().join("store"))
        )),
        "{stderr}"
    );
    let each = COPIES + 1;
    assert!(
        stderr.contains(&format!(
            "dropped        {}  (channel_join {each}, empty_bot_message {each})",
            2 * each
        )),
        "{stderr}"
    );

    // The default interval (30 s) says nothing in a run this short; the summary comes as
    // JSON with JSON logs.
    let quiet = run_ok(
        kass()
            .args(["fetch", "--full", "--log-format", "json", "--config"])
            .arg(&config),
    );
    let quiet = String::from_utf8_lossy(&quiet.stderr);
    assert!(!quiet.contains("\"progress\""), "{quiet}");
    let summary: serde_json::Value = quiet
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["fields"]["message"] == "summary")
        .unwrap_or_else(|| panic!("no JSON summary in {quiet}"));
    assert_eq!(summary["fields"]["batches"], batches as u64);
}

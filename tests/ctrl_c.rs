//! Ctrl-C (SIGINT) or SIGTERM on a long `kass fetch`: sources stop, in-flight work drains into
//! complete batch files, and the process exits cleanly.

mod support;

use std::time::{Duration, Instant};

use kass_pipeline::batch::read_batch;
use support::test_data::fixture;
use support::{batch_chunk_count, files_under, kass, run_ok};

/// Copies of the fixture export's channels: enough that a whole fetch takes seconds.
const COPIES: usize = 1500;

/// The project's fixture export with every channel copied `copies` times under new names.
fn enlarged_export(dir: &std::path::Path, copies: usize) -> std::path::PathBuf {
    let src = fixture("slack-export");
    let out = dir.join("export");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(src.join("users.json"), out.join("users.json")).unwrap();
    let channels: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(src.join("channels.json")).unwrap()).unwrap();
    let mut listed = Vec::new();
    for k in 0..copies {
        for ch in &channels {
            let name = ch["name"].as_str().unwrap();
            if !src.join(name).is_dir() {
                continue;
            }
            let mut copy = ch.clone();
            copy["id"] = format!("{}X{k}", ch["id"].as_str().unwrap()).into();
            copy["name"] = format!("{name}-{k}").into();
            support::copy_dir(&src.join(name), &out.join(format!("{name}-{k}")));
            listed.push(copy);
        }
    }
    std::fs::write(
        out.join("channels.json"),
        serde_json::to_vec(&listed).unwrap(),
    )
    .unwrap();
    out
}

/// A kass.toml fetching `export` into `store`.
fn fetch_config(
    dir: &std::path::Path,
    export: &std::path::Path,
    store: &std::path::Path,
) -> std::path::PathBuf {
    let config = dir.join("kass.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n[batch]\nmax_chunks = 20\n[[sources]]\ntype = \"slack_export\"\npath = \"{}\"\n",
            store.display(),
            export.display()
        ),
    )
    .unwrap();
    config
}

/// Chunks a whole fetch of one copy of the fixture writes.
fn chunks_per_copy() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let export = enlarged_export(dir.path(), 1);
    let store = dir.path().join("store");
    let config = fetch_config(dir.path(), &export, &store);
    run_ok(kass().args(["fetch", "--config"]).arg(&config));
    batch_chunk_count(&store)
}

#[test]
fn sigint_drains_in_flight_work_and_exits_cleanly() {
    drains_on("-INT");
}

#[test]
fn sigterm_drains_in_flight_work_like_sigint() {
    drains_on("-TERM");
}

fn drains_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let whole = chunks_per_copy() * COPIES;
    let export = enlarged_export(dir.path(), COPIES);
    let store = dir.path().join("store");
    let config = fetch_config(dir.path(), &export, &store);
    let child = kass()
        .args(["fetch", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files_under(&store).iter().any(|f| f.contains("/chunked/")) {
        assert!(Instant::now() < deadline, "no batch written within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit {:?}: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("interrupted: sources stopped early"),
        "{stderr}"
    );
    assert!(
        stderr.contains("interrupt: finishing in-flight work"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kass fetch:"));

    let files = files_under(&store);
    assert!(
        files.iter().all(|f| !f.contains(".kass-tmp-")),
        "half-written files left: {files:?}"
    );
    let mut chunks = 0;
    for rel in files.iter().filter(|f| f.contains("/chunked/")) {
        chunks += read_batch(rel, &std::fs::read(store.join(rel)).unwrap())
            .expect("every batch is complete")
            .chunk_count;
    }
    assert!(
        chunks > 0 && chunks < whole,
        "{chunks} of {whole} chunks: the run was not interrupted"
    );
}

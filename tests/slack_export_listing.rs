//! `kass fetch` over Slack exports that are not plain directories of files: one assembled from
//! symbolic links writes the same chunks as the plain one, and one holding less than its
//! listings promise says so on stderr, naming each path, instead of a silent "0 batch files".

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use kass::assembly::fetch_half;
use kass::config::KassConfig;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::build_store;
use support::test_data::fixture;
use support::{batch_chunk_ids, kass, metric_value};

fn config_text(export: &Path, store: &Path) -> String {
    format!(
        "[store]\ntype = \"local\"\npath = \"{}\"\n[[sources]]\ntype = \"slack_export\"\nname = \"slack\"\npath = \"{}\"\n",
        store.display(),
        export.display()
    )
}

/// Runs `kass fetch` over `export` into `dir/store`, failing the test if it takes over a minute
/// (a link loop must not hang the source).
fn fetch(dir: &Path, export: &Path) -> (Output, PathBuf) {
    let store = dir.join("store");
    let config = dir.join("kass.toml");
    std::fs::write(&config, config_text(export, &store)).unwrap();
    let mut child = kass()
        .args(["fetch", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "kass fetch over {} did not finish in 60 s",
                export.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kass fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, store)
}

fn symlink(to: &Path, link: &Path) {
    std::os::unix::fs::symlink(to, link).unwrap();
}

#[test]
fn an_export_assembled_from_links_writes_the_same_chunks_as_the_plain_one() {
    let plain_dir = tempfile::tempdir().unwrap();
    let (out, plain_store) = fetch(plain_dir.path(), &fixture("slack-export"));
    let plain = batch_chunk_ids(&plain_store);
    assert!(!plain.is_empty());
    // Days holding only thread parents have no day document, and that is no problem: the one
    // warning is about the channels listed without folders.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("2 conversations listed in the export have no folder"),
        "{stderr}"
    );

    // Every listing and channel folder a link, `general`'s day files linked one by one.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    for entry in std::fs::read_dir(fixture("slack-export")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "general" {
            std::fs::create_dir(export.join("general")).unwrap();
            for day in std::fs::read_dir(entry.path()).unwrap() {
                let day = day.unwrap();
                symlink(&day.path(), &export.join("general").join(day.file_name()));
            }
        } else {
            symlink(&entry.path(), &export.join(entry.file_name()));
        }
    }
    let (out, store) = fetch(dir.path(), &export);
    assert_eq!(batch_chunk_ids(&store), plain);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("cannot follow"), "{stderr}");
}

/// The fixture's listings with nothing behind them: `general` an empty folder, `dev-help` a
/// broken link, `releases` a link to itself; `design` and `old-announcements` have no folder.
fn hollow_export(dir: &Path) -> PathBuf {
    let export = dir.join("export");
    std::fs::create_dir(&export).unwrap();
    for file in ["users.json", "channels.json"] {
        std::fs::copy(fixture("slack-export").join(file), export.join(file)).unwrap();
    }
    std::fs::create_dir(export.join("general")).unwrap();
    symlink(
        Path::new("/nonexistent/kass/dev-help"),
        &export.join("dev-help"),
    );
    symlink(&export.join("releases"), &export.join("releases"));
    export
}

#[test]
fn an_export_holding_less_than_it_lists_warns_naming_each_path() {
    let dir = tempfile::tempdir().unwrap();
    let export = hollow_export(dir.path());
    let (out, store) = fetch(dir.path(), &export);
    assert!(batch_chunk_ids(&store).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    let warned = |needles: &[&str]| {
        assert!(
            warnings
                .iter()
                .any(|line| needles.iter().all(|n| line.contains(n))),
            "no warning with {needles:?} in:\n{stderr}"
        )
    };
    let path = |rel: &str| export.join(rel).display().to_string();
    warned(&["holds no day file", &path("general")]);
    warned(&["cannot follow", &path("dev-help")]);
    warned(&["cannot follow", &path("releases")]);
    warned(&[
        "4 conversations listed in the export have no folder",
        &export.display().to_string(),
        "design",
        "old-announcements",
    ]);
    warned(&["no day file was read", &export.display().to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shortfall_is_counted_by_reason() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export = hollow_export(dir.path());
    let config = KassConfig::parse(&config_text(&export, &dir.path().join("store"))).unwrap();
    let store = build_store(&config.store).await.unwrap();
    fetch_half(&config, store, Shutdown::default(), &Default::default())
        .unwrap()
        .run(|_| {})
        .await
        .unwrap();
    let text = handle.render();
    let count = |reason| {
        metric_value(
            &text,
            "kass_source_warnings_total",
            &[("source", "slack"), ("reason", reason)],
        )
    };
    assert_eq!(count("empty_channel_folder"), Some(1.0), "{text}");
    assert_eq!(count("unreadable_entry"), Some(2.0), "{text}");
    assert_eq!(count("listed_channel_missing"), Some(4.0), "{text}");
    assert_eq!(count("no_day_files"), Some(1.0), "{text}");
}

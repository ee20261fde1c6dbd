//! `kass fetch`, `kass run` and `kass inspect` as a user runs them, on the shipped example data.

mod support;

use kass_pipeline::batch::read_batch;
use support::{
    batch_chunk_ids, copy_dir, files_under, kass, repo_root, run_ok, write_example_config,
    ChromaServer,
};

#[test]
fn fetch_writes_valid_batches_and_refetching_gives_the_same_chunk_ids() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_example_config(dir.path(), &repo_root().join("examples/data/slack-export"));
    run_ok(kass().args(["fetch", "--config"]).arg(&config));
    let first = batch_chunk_ids(&dir.path().join("store"));
    assert!(first.len() >= 5, "{first:?}");
    let files = files_under(&dir.path().join("store"));
    assert!(
        files.iter().any(|f| f.starts_with("slack/chunked/year=")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("docs/chunked/year=")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with("_dead_letter/")),
        "{files:?}"
    );

    std::fs::remove_dir_all(dir.path().join("store")).unwrap();
    let out = kass()
        .args(["fetch", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        batch_chunk_ids(&dir.path().join("store")),
        first,
        "chunk ids must be deterministic"
    );

    // The batch writer's limit (max_chunks = 4 in this config) holds for every file.
    let all = files_under(&dir.path().join("store"));
    assert!(all.contains(&"_state/slack.json".to_string()), "{all:?}");
    for rel in all.into_iter().filter(|f| f.contains("/chunked/")) {
        let batch = read_batch(
            &rel,
            &std::fs::read(dir.path().join("store").join(&rel)).unwrap(),
        )
        .unwrap();
        assert!(
            batch.chunk_count <= 4 && batch.chunk_count > 0,
            "{rel}: {}",
            batch.chunk_count
        );
    }
}

#[test]
fn malformed_day_file_is_dead_lettered_and_everything_else_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let slack = dir.path().join("slack");
    copy_dir(&repo_root().join("examples/data/slack-export"), &slack);
    std::fs::write(
        slack.join("general/2025-10-07.json"),
        "[{\"type\": \"message\", \"ts\": ",
    )
    .unwrap();
    let config = write_example_config(dir.path(), &slack);
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&chroma.config("malformed-day"));
    std::fs::write(&config, text).unwrap();
    let out = kass()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "one bad file must not fail the run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 dead letter(s)"), "{stdout}");

    let store = dir.path().join("store");
    let letters: Vec<String> = files_under(&store)
        .into_iter()
        .filter(|f| f.starts_with("_dead_letter/"))
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join(&letters[0])).unwrap()).unwrap();
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("general/2025-10-07.json"),
        "reason must name the file: {reason}"
    );
    // The other day file of the same channel, and the other channel, still made it.
    let texts: String = files_under(&store)
        .into_iter()
        .filter(|f| f.contains("/chunked/"))
        .flat_map(|rel| {
            read_batch(&rel, &std::fs::read(store.join(&rel)).unwrap())
                .unwrap()
                .chunks
        })
        .map(|c| c.text)
        .collect();
    assert!(
        texts.contains("code freeze is Thursday"),
        "general/2025-10-06 lost"
    );
    assert!(texts.contains("build-essential"), "dev-help lost");
}

#[test]
fn inspect_summarises_a_batch_file_and_names_the_field_of_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_example_config(dir.path(), &repo_root().join("examples/data/slack-export"));
    assert!(kass()
        .args(["fetch", "--config"])
        .arg(&config)
        .status()
        .unwrap()
        .success());
    let store = dir.path().join("store");
    let rel = files_under(&store)
        .into_iter()
        .find(|f| f.starts_with("slack/chunked/"))
        .unwrap();
    let out = kass()
        .args(["inspect", "--chunks", "1"])
        .arg(store.join(&rel))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("schema        1") && stdout.contains("source        slack"),
        "{stdout}"
    );

    let broken = dir
        .path()
        .join("slack/chunked/year=2025/month=01/day=01/batch_x.json");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, r#"{"batch_id":"x","timestamp":"2025-01-01T00:00:00Z","source":"slack","chunk_count":1,"chunks":[{"id":"a","metadata":{}}]}"#).unwrap();
    let out = kass().arg("inspect").arg(&broken).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("chunks[0]") && stderr.contains("text"),
        "{stderr}"
    );
}

#[test]
fn bad_config_names_the_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kass.toml");
    std::fs::write(&path, "[batch]\nmax_chunkz = 5\n").unwrap();
    let out = kass()
        .args(["fetch", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_chunkz") && stderr.contains("kass.toml"),
        "{stderr}"
    );
}

//! `kass run` into a real Chroma server (`chroma run`, started here): counts equal the unique
//! chunks, a re-run changes nothing and makes no embedding request, an edit replaces its stale
//! chunks, data survives a server restart, a collection of another model is refused, and
//! `kass query` / `kass stats` read it back.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use fake_provider::{Api, FakeOptions, FakeProvider};
use support::{batch_chunk_ids, kass, run_ok, write_run_config, ChromaServer};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chunk_count(config: &std::path::Path) -> u64 {
    let out = run_ok(kass().args(["stats", "--config"]).arg(config));
    let text = stdout(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("chunks"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {text}"))
}

/// [`chunk_count`] off the async runtime.
async fn stored_count(config: &std::path::Path) -> u64 {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || chunk_count(&config))
        .await
        .unwrap()
}

/// A JSON answer to a GET, read with a plain HTTP/1.0 exchange (no runtime needed).
fn http_get_json(url: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Rewrites the `[chroma] url` of a config to a (re)started server.
fn point_config_at(config: &std::path::Path, chroma: &ChromaServer) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("url = \"http://127.0.0.1:") {
                format!("url = \"{}\"", chroma.url())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(config, text).unwrap();
}

/// `kass ARGS --config CONFIG` with the test provider's key, off the async runtime; its stdout.
async fn kass_ok(config: &std::path::Path, args: &[&str]) -> String {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        run_ok(
            kass()
                .env("KASS_CHROMA_TEST_KEY", "test-key-123")
                .args(&args)
                .arg("--config")
                .arg(&config),
        )
    })
    .await
    .unwrap();
    stdout(&out)
}

/// Embeds with a local OpenAI-like server so that embedding calls can be counted.
fn use_counting_provider(config: &std::path::Path, server: &FakeProvider) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"counted\"\ndimensions = 8\napi_key_env = \"KASS_CHROMA_TEST_KEY\"\n",
        server.base_url()
    ));
    std::fs::write(config, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_is_idempotent_without_embedding_calls_and_edits_replace_stale_chunks() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "idempotent");
    use_counting_provider(&config, &server);
    let run = || kass_ok(&config, &["run"]);
    run().await;
    let unique = {
        let mut ids = batch_chunk_ids(&dir.path().join("store"));
        ids.dedup();
        ids.len() as u64
    };
    let first_calls = server.log().len();
    let count = stored_count(&config).await;
    assert_eq!(
        count, unique,
        "the collection holds exactly the unique chunks"
    );

    let again = run().await;
    assert!(again.contains("0 new or changed chunks"), "{again}");
    assert_eq!(
        server.log().len(),
        first_calls,
        "a re-run makes no embedding call"
    );
    assert_eq!(stored_count(&config).await, unique);

    // Edit one message: its chunk is re-embedded and the old version deleted.
    let day = dir.path().join("slack/general/2025-10-06.json");
    let text = std::fs::read_to_string(&day).unwrap();
    let mut messages: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let first = messages
        .iter_mut()
        .find(|m| m.get("text").is_some() && m.get("subtype").is_none())
        .expect("a message");
    first["text"] = serde_json::json!("An edited message that says something else entirely.");
    std::fs::write(&day, serde_json::to_string(&messages).unwrap()).unwrap();
    let edited = run().await;
    assert!(edited.contains("1 new or changed chunks"), "{edited}");
    assert_eq!(
        stored_count(&config).await,
        unique,
        "the replaced chunk was deleted, not kept beside the new one"
    );
}

#[test]
fn data_survives_a_restart_and_query_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "restart");
    run_ok(kass().args(["run", "--config"]).arg(&config));
    let before = chunk_count(&config);
    // A Python client's `query_texts` embeds with the model the collection records.
    let described = http_get_json(&format!(
        "{}/api/v2/tenants/default_tenant/databases/default_database/collections/restart",
        chroma.url()
    ));
    let function = &described["configuration_json"]["embedding_function"];
    assert_eq!(function["name"], "sentence_transformer", "{described}");
    assert_eq!(
        function["config"]["model_name"], "all-MiniLM-L6-v2",
        "{described}"
    );
    let path = chroma.stop();
    let chroma = ChromaServer::start(&path);
    // Same port is not guaranteed: point the config at the new server.
    point_config_at(&config, &chroma);
    assert_eq!(chunk_count(&config), before);
    let out = run_ok(
        kass()
            .args([
                "query",
                "how do I run only the chunker tests",
                "-k",
                "1",
                "--json",
                "--config",
            ])
            .arg(&config),
    );
    let hit: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert!(
        hit["text"]
            .as_str()
            .unwrap()
            .contains("cargo test -p kass-stages"),
        "{hit}"
    );
    assert_eq!(hit["metadata"]["source"], "slack");
    assert!(hit["score"].as_f64().unwrap() > 0.4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collection_of_another_model_is_refused_before_any_write() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "one-model");
    let cfg = config.clone();
    tokio::task::spawn_blocking(move || run_ok(kass().args(["run", "--config"]).arg(&cfg)))
        .await
        .unwrap();
    use_counting_provider(&config, &server);
    let out = tokio::task::spawn_blocking(move || {
        kass()
            .env("KASS_CHROMA_TEST_KEY", "test-key-123")
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("holds vectors of all-MiniLM-L6-v2 (384 dimensions)")
            && stderr.contains("counted (8 dimensions)"),
        "{stderr}"
    );
    assert!(server.log().is_empty(), "refused before any embedding call");
}

/// Chroma killed while `kass run` is embedding: the vectors it could not write go to the dead
/// letters (with the reason) and the run finishes; after a restart, a re-run stores exactly the
/// unique chunks, nothing lost and nothing doubled.
#[tokio::test(flavor = "multi_thread")]
async fn chroma_killed_mid_run_loses_nothing() {
    let mut slow = FakeOptions::new(Api::OpenAi);
    slow.latency = std::time::Duration::from_millis(300);
    let server = FakeProvider::start(slow).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "killed");
    use_counting_provider(&config, &server);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[embed]\nbatch_size = 2\nmax_in_flight = 1\n");
    // Chroma does not come back during this run: give up holding at once.
    let text = text.replacen("[chroma]\n", "[chroma]\noutage_hold_secs = 0\n", 1);
    std::fs::write(&config, text).unwrap();
    let cfg = config.clone();
    let run = tokio::task::spawn_blocking(move || {
        kass()
            .env("KASS_CHROMA_TEST_KEY", "test-key-123")
            .args(["run", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    });
    // Kill Chroma once embedding is under way (the collection exists by then).
    while server.log().len() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let path = chroma.stop();
    let out = run.await.unwrap();
    let stdout = stdout(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let letters: Vec<String> = support::files_under(&dir.path().join("store"))
        .into_iter()
        .filter(|f| f.starts_with("_dead_letter/chroma_sink/"))
        .collect();
    assert!(
        !letters.is_empty(),
        "unwritten vectors are dead-lettered: {stdout}"
    );
    // Chunks that reached skip_stored after the outage began are dead-lettered unembedded.
    let unembedded: Vec<String> = support::files_under(&dir.path().join("store"))
        .into_iter()
        .filter(|f| f.starts_with("_dead_letter/skip_stored/"))
        .collect();
    let all_letters = letters.len() + unembedded.len();
    let letter: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("store").join(&letters[0])).unwrap())
            .unwrap();
    assert_eq!(letter["error_type"], "chroma_unavailable", "{letter}");
    assert!(
        stdout.contains(&format!("{all_letters} dead letter(s)")),
        "{stdout}"
    );

    let chroma = ChromaServer::start(&path);
    point_config_at(&config, &chroma);

    // The dead letters name the failure; reprocessing stores their vectors without
    // embedding them again, and removes them.
    let listed = kass_ok(&config, &["dead-letters", "list"]).await;
    assert!(
        listed.contains("chroma_sink chroma_unavailable"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("{all_letters} dead letter(s)")),
        "{listed}"
    );
    let inputs =
        |log: Vec<fake_provider::Logged>| log.iter().map(|l| l.inputs.len()).sum::<usize>();
    let calls = inputs(server.log());
    let reprocessed = kass_ok(&config, &["dead-letters", "reprocess"]).await;
    assert!(
        reprocessed.contains("0 new dead letter(s)"),
        "{reprocessed}"
    );
    assert_eq!(
        inputs(server.log()),
        calls + unembedded.len(),
        "stored vectors are not embedded again; only the unembedded chunks are"
    );
    assert!(support::files_under(&dir.path().join("store"))
        .iter()
        .all(|f| !f.starts_with("_dead_letter/chroma_sink/")));
    let mut ids = batch_chunk_ids(&dir.path().join("store"));
    ids.dedup();
    assert_eq!(
        stored_count(&config).await,
        ids.len() as u64,
        "{reprocessed}"
    );

    kass_ok(&config, &["run"]).await;
    let mut ids = batch_chunk_ids(&dir.path().join("store"));
    ids.dedup();
    assert_eq!(stored_count(&config).await, ids.len() as u64);
}

/// Letters are re-run by the item kind they record, whatever stage wrote them; a letter of an
/// older kass, which records none, is re-run by its stage as before.
#[tokio::test(flavor = "multi_thread")]
async fn reprocess_dispatches_on_item_kind_and_old_letters_still_reprocess() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "kinds");
    use_counting_provider(&config, &server);
    kass_ok(&config, &["fetch"]).await;
    let store = dir.path().join("store");
    let batch = support::files_under(&store)
        .into_iter()
        .find(|k| k.contains("/chunked/"))
        .expect("a batch file");
    let chunks =
        kass_pipeline::batch::read_batch(&batch, &std::fs::read(store.join(&batch)).unwrap())
            .unwrap()
            .into_chunks();
    let letter = |stage: &str, error_type: &str, item: serde_json::Value| {
        serde_json::json!({
            "stage": stage, "source": "slack", "item_id": "x", "error_type": error_type,
            "reason": "r", "failed_at": "2025-10-06T16:00:00Z", "item": item})
    };
    let put = |key: &str, letter: serde_json::Value| {
        let path = store.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec(&letter).unwrap()).unwrap();
    };
    // An older kass's letter: no item_kind, a chunk by its stage.
    let old = "_dead_letter/embed/2025-10-06/160000_0123456789ab_old.json";
    put(
        old,
        letter(
            "embed",
            "embed_unavailable",
            serde_json::to_value(&chunks[0]).unwrap(),
        ),
    );
    // A letter of a stage reprocess knows nothing of, re-run by the kind it records.
    let mut new = letter(
        "a_later_stage",
        "embed_unavailable",
        serde_json::to_value(&chunks[1]).unwrap(),
    );
    new["item_kind"] = "chunk".into();
    let new_key = "_dead_letter/a_later_stage/2025-10-06/160000_0123456789ab_new.json";
    put(new_key, new);
    // One malformed chunk of a batch, old format: listed, not re-run.
    let kept = "_dead_letter/batch_loader/2025-10-06/160000_0123456789ab_kept.json";
    put(
        kept,
        letter(
            "batch_loader",
            "malformed_chunk",
            serde_json::json!({"text": ""}),
        ),
    );

    let cfg = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_ok(
            kass()
                .env("KASS_CHROMA_TEST_KEY", "test-key-123")
                .args(["dead-letters", "reprocess", "--config"])
                .arg(&cfg),
        )
    })
    .await
    .unwrap();
    let out = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.contains("2 letter(s) re-run: 2 chunk(s) stored, 0 new dead letter(s); 1 kept"),
        "{out}"
    );
    assert_eq!(stored_count(&config).await, 2, "{out}");
    let left: Vec<String> = support::files_under(&store)
        .into_iter()
        .filter(|k| k.starts_with("_dead_letter/"))
        .collect();
    assert_eq!(left, [kept], "{out}");
}

/// `kass eval` on a tiny labelled set whose every query has one unmistakable answer: by the
/// standard definitions nDCG@10, recall@10 and MRR@10 are all exactly 1 (the answer ranked
/// first). Labelling one query's answer as a document about something else must lower them.
#[test]
fn eval_scores_a_labelled_set() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = dir.path().join("kass.toml");
    std::fs::write(&config, chroma.config("eval-set")).unwrap();
    let fixtures = support::repo_root().join("tests/fixtures/eval");
    let eval = |qrels: &std::path::Path| {
        let out = run_ok(
            kass()
                .args(["eval", "--config"])
                .arg(&config)
                .arg("--corpus")
                .arg(fixtures.join("corpus.jsonl"))
                .arg("--queries")
                .arg(fixtures.join("queries.jsonl"))
                .arg("--qrels")
                .arg(qrels)
                .args(["--collection", "eval-set"]),
        );
        stdout(&out)
    };
    let text = eval(&fixtures.join("qrels.tsv"));
    assert!(
        text.contains("nDCG@10 1.0000  recall@10 1.0000  MRR@10 1.0000  (4 queries"),
        "{text}"
    );
    // q-bread's "answer" is now the tomato document, which cannot rank first for it.
    let wrong = dir.path().join("wrong.tsv");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(fixtures.join("qrels.tsv"))
            .unwrap()
            .replace("q-bread\td-sourdough", "q-bread\td-tomato"),
    )
    .unwrap();
    let text = eval(&wrong);
    let mrr: f64 = text
        .split("MRR@10 ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        mrr <= 0.875,
        "one of four queries now has its answer at rank 2 or lower: {text}"
    );
}

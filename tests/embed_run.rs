//! `kass run` as a user runs it, through the embed stage: with the local model (the default)
//! and with a remote provider (a local server answering like OpenAI), whose key must never be
//! printed.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use fake_provider::{Api, FakeOptions, FakeProvider};
use support::{batch_chunk_count, batch_chunk_ids, kass, run_ok, write_run_config, ChromaServer};

#[test]
fn run_embeds_every_chunk_with_the_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "local-model");
    let out = run_ok(kass().args(["run", "--config"]).arg(&config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let chunks = batch_chunk_count(&dir.path().join("store"));
    assert!(chunks > 5);
    assert!(
        stdout.contains(&format!(
            "{chunks} new or changed chunks embedded with all-MiniLM-L6-v2 (384 dimensions)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("0 dead letter(s)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_a_remote_provider_embeds_everything_and_never_prints_the_key() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_run_config(dir.path(), &chroma, "remote-model");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[embed]\nbatch_size = 4\n\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"text-embedding-3-small\"\ndimensions = 8\napi_key_env = \"KASS_E2E_KEY\"\n",
        server.base_url()
    ));
    std::fs::write(&config, text).unwrap();
    let run = |key: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            kass()
                .env("KASS_E2E_KEY", key)
                .env("RUST_LOG", "debug")
                .args(["run", "--config"])
                .arg(&config)
                .output()
                .unwrap()
        })
    };
    // The refused key first: once stored, chunks are skipped and never reach the provider.
    let refused = run("sk-not-the-right-one").await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("endpoint `openai`") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-not-the-right-one"), "{stderr}");
    let ok = run("test-key-123").await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    // Both runs wrote batch files of the same chunks.
    let mut ids = batch_chunk_ids(&dir.path().join("store"));
    ids.dedup();
    let chunks = ids.len();
    assert!(
        stdout.contains(&format!(
            "{chunks} new or changed chunks embedded with text-embedding-3-small (8 dimensions)"
        )),
        "{stdout}"
    );
    assert!(server.log().iter().all(|l| l.inputs.len() <= 4));
    assert_eq!(
        server
            .log()
            .iter()
            .filter(|l| l.status == 200)
            .map(|l| l.inputs.len())
            .sum::<usize>(),
        chunks
    );
    assert!(!stdout.contains("test-key-123") && !stderr.contains("test-key-123"));
}

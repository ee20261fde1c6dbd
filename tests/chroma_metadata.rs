//! Metadata and document shape against a real Chroma server: nested metadata arrives as dotted
//! keys and lists (filterable with `kass query --contains`), a record Chroma refuses is
//! dead-lettered naming its key while the rest of its batch is stored, and a document that
//! shrinks loses the chunks past its new end.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::path::{Path, PathBuf};

use fake_provider::{Api, FakeOptions, FakeProvider};
use serde_json::{json, Value};
use support::{kass, run_ok, ChromaServer};

const KEY_ENV: &str = "KASS_CHROMA_META_TEST_KEY";

/// A run over one jsonl file into `collection`, embedding with the local OpenAI-like server.
fn jsonl_config(
    dir: &Path,
    chroma: &ChromaServer,
    server: &FakeProvider,
    collection: &str,
) -> PathBuf {
    let config = dir.join("kass.toml");
    let text = format!(
        r#"
[store]
type = "local"
path = "{store}"

[chunking]
max_tokens = 40

[[sources]]
type = "jsonl"
name = "kb"
path = "{corpus}"

[embed.provider]
kind = "openai"
base_url = "{base}"
model = "counted"
dimensions = 8
api_key_env = "{KEY_ENV}"
{chroma}"#,
        store = dir.join("store").display(),
        corpus = dir.join("corpus.jsonl").display(),
        base = server.base_url(),
        chroma = chroma.config(collection),
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn write_corpus(dir: &Path, documents: &[Value]) {
    let lines: Vec<String> = documents.iter().map(Value::to_string).collect();
    std::fs::write(dir.join("corpus.jsonl"), lines.join("\n") + "\n").unwrap();
}

async fn kass_run(config: &Path) -> std::process::Output {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        run_ok(
            kass()
                .env(KEY_ENV, "test-key-123")
                .args(["run", "--config"])
                .arg(&config),
        )
    })
    .await
    .unwrap()
}

/// Every stored chunk `kass query --json` can reach (k above the collection size), optionally
/// filtered.
async fn stored(config: &Path, extra: &[&str]) -> Vec<Value> {
    let config = config.to_path_buf();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        run_ok(
            kass()
                .env(KEY_ENV, "test-key-123")
                .args(["query", "anything", "-k", "100", "--json", "--config"])
                .arg(&config)
                .args(&extra),
        )
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    let store = dir.join("store");
    support::files_under(&store)
        .into_iter()
        .filter(|f| f.starts_with("_dead_letter/chroma_sink/"))
        .map(|f| serde_json::from_slice(&std::fs::read(store.join(f)).unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_metadata_round_trips_and_a_refused_key_is_named() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = jsonl_config(dir.path(), &chroma, &server, "metadata");
    write_corpus(
        dir.path(),
        &[
            json!({"id": "issue-1", "kind": "text", "text": "The login page times out.",
                   "metadata": {"author": {"name": "Ann", "team": {"id": 7}},
                                "labels": ["bug", "p1"], "milestone": null}}),
            json!({"id": "issue-2", "kind": "text", "text": "Reserved key in here.",
                   "metadata": {"#channel": "general"}}),
            json!({"id": "issue-3", "kind": "text", "text": "Plain feature request.",
                   "metadata": {"labels": ["feature"]}}),
        ],
    );
    kass_run(&config).await;

    let chunks = stored(&config, &[]).await;
    let by_doc = |id: &str| {
        chunks
            .iter()
            .find(|c| c["metadata"]["document_id"] == id)
            .unwrap_or_else(|| panic!("{id} not stored: {chunks:?}"))
    };
    let meta = &by_doc("issue-1")["metadata"];
    assert_eq!(meta["author.name"], "Ann", "{meta}");
    assert_eq!(meta["author.team.id"], 7, "{meta}");
    assert_eq!(meta["labels"], json!(["bug", "p1"]), "{meta}");
    assert!(meta.get("milestone").is_none(), "nulls are dropped: {meta}");
    by_doc("issue-3");
    assert_eq!(chunks.len(), 2, "only the refused record is missing");

    let bugs = stored(&config, &["--contains", "labels=bug"]).await;
    assert_eq!(bugs.len(), 1, "{bugs:?}");
    assert_eq!(bugs[0]["metadata"]["document_id"], "issue-1");

    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert_eq!(
        letters[0]["error_type"], "chroma_rejected",
        "{}",
        letters[0]
    );
    assert!(reason.contains("`#channel`"), "the key is named: {reason}");
}

/// Text of `n` short paragraphs, each about one chunk at `max_tokens = 40`.
fn paragraphs(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Paragraph {i} explains step {i} of the deployment runbook in enough words to \
                 fill most of one small chunk on its own."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn chunk_ids_of(chunks: &[Value], document: &str) -> Vec<(i64, String)> {
    let mut ids: Vec<(i64, String)> = chunks
        .iter()
        .filter(|c| c["metadata"]["document_id"] == document)
        .map(|c| {
            (
                c["metadata"]["chunk_index"].as_i64().unwrap(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shorter_document_loses_the_chunks_past_its_end() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = jsonl_config(dir.path(), &chroma, &server, "shrink");
    let doc = |n: usize| json!({"id": "runbook", "kind": "text", "text": paragraphs(n)});
    let other = json!({"id": "other", "kind": "text", "text": paragraphs(2)});
    write_corpus(dir.path(), &[doc(5), other.clone()]);
    kass_run(&config).await;
    let before = chunk_ids_of(&stored(&config, &[]).await, "runbook");
    assert!(
        before.len() >= 4,
        "the long version spans chunks: {before:?}"
    );
    let others = chunk_ids_of(&stored(&config, &[]).await, "other");

    // Cut the last paragraphs: the earlier chunks keep their ids (skipped, not re-embedded);
    // the positions past the new end must go.
    write_corpus(dir.path(), &[doc(2), other.clone()]);
    let calls = server.log().len();
    kass_run(&config).await;
    let run_calls = server.log().len() - calls;
    let after_chunks = stored(&config, &[]).await;
    let after = chunk_ids_of(&after_chunks, "runbook");
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert_eq!(
        after[..],
        before[..after.len()],
        "the unchanged leading chunks stay as they were"
    );
    assert_eq!(run_calls, 0, "nothing new to embed");
    assert_eq!(
        chunk_ids_of(&after_chunks, "other"),
        others,
        "other documents untouched"
    );
    for c in after_chunks
        .iter()
        .filter(|c| c["metadata"]["document_id"] == "runbook")
    {
        assert_eq!(c["metadata"]["document_chunks"], after.len() as i64, "{c}");
    }

    // Shrink it again with an edited last paragraph: the sink's delete after upsert does it.
    let mut edited = doc(1);
    edited["text"] = json!(format!("{} Edited.", paragraphs(1)));
    write_corpus(dir.path(), &[edited, other]);
    kass_run(&config).await;
    let last = chunk_ids_of(&stored(&config, &[]).await, "runbook");
    assert_eq!(last.len(), 1, "{last:?}");
    assert_ne!(
        last[0].1, before[0].1,
        "the edited chunk replaced the old one"
    );
}

/// A gateway in front of the real Chroma that wants a token, the way a hosted Chroma or an
/// auth proxy does: 401 without it, the request forwarded with it.
struct TokenGateway {
    url: String,
}

impl TokenGateway {
    async fn start(upstream: String, header: &'static str, expected: &'static str) -> Self {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;
        let client = reqwest::Client::new();
        let handle = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let client = client.clone();
            let upstream = upstream.clone();
            async move {
                let presented = headers.get(header).and_then(|v| v.to_str().ok());
                if presented != Some(expected) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"error":"AuthError","message":"Unauthorized"}"#,
                    )
                        .into_response();
                }
                let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                let answer = client
                    .request(method, format!("{upstream}{uri}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                (status, answer.bytes().await.unwrap()).into_response()
            }
        };
        let app = axum::Router::new().fallback(handle);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url }
    }
}

/// Points the config's Chroma at `url` with the token from `CHROMA_TEST_TOKEN` in `header`.
fn with_token(config: &Path, url: &str, header: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("url = \"http://127.0.0.1:") {
                format!(
                    "url = \"{url}\"\ntoken_env = \"CHROMA_TEST_TOKEN\"\ntoken_header = \"{header}\""
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(config, text.join("\n")).unwrap();
}

/// Runs `kass COMMAND` with `token` as the Chroma token; its output and stdout + stderr.
async fn with_chroma_token(
    config: &Path,
    token: &str,
    command: &str,
) -> (std::process::Output, String) {
    let (config, token, command) = (config.to_path_buf(), token.to_string(), command.to_string());
    let out = tokio::task::spawn_blocking(move || {
        kass()
            .env(KEY_ENV, "test-key-123")
            .env("CHROMA_TEST_TOKEN", token)
            .arg(command)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, all)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_sent_in_the_configured_header_and_never_shown() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    write_corpus(
        dir.path(),
        &[json!({"id": "a", "kind": "text", "text": "Behind a gateway."})],
    );
    for (header, wire_header, expected) in [
        ("x-chroma-token", "x-chroma-token", "s3cret-token-x"),
        ("authorization", "authorization", "Bearer s3cret-token-x"),
    ] {
        let gateway = TokenGateway::start(chroma.url(), wire_header, expected).await;
        let config = jsonl_config(dir.path(), &chroma, &server, &format!("auth-{header}"));
        with_token(&config, &gateway.url, header);
        let (ok, all) = with_chroma_token(&config, "s3cret-token-x", "run").await;
        assert!(ok.status.success(), "{header}: {all}");
        assert!(!all.contains("s3cret"), "the token leaked: {all}");

        let (refused, all) = with_chroma_token(&config, "wrong-s3cret", "stats").await;
        assert!(!refused.status.success(), "a wrong token must fail: {all}");
        assert!(all.contains("401"), "{all}");
        assert!(!all.contains("wrong-s3cret"), "the token leaked: {all}");
    }
}

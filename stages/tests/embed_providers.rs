//! The embed stage against local servers that answer like Voyage, OpenAI, Cohere, Hugging Face
//! and TEI (documented paths, fields, auth, errors, 429 + Retry-After): every chunk gets its
//! own vector, refused inputs are isolated, rate limits hold, failures never lose a chunk.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::stream;
use kass_pipeline::dead_letter::{self, DeadLetter};
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::{Chunk, EmbeddedChunk, FatalError, Metadata, Topology, TopologyConfig};
use kass_stages::embed::{EmbedConfig, EndpointConfig, ProviderKind};
use serde_json::json;
use support::fake_provider::{fake_vector, Api, FakeOptions, FakeProvider};

fn chunks(n: usize, words: usize) -> Vec<Chunk> {
    (0..n)
        .map(|i| {
            let text = (0..words)
                .map(|w| format!("word{}x{}", i, w))
                .collect::<Vec<_>>()
                .join(" ");
            Chunk::new(
                "slack",
                &format!("C1/2025-01-0{}", i % 9 + 1),
                i,
                text,
                Metadata::new(),
            )
        })
        .collect()
}

fn kind_of(api: Api) -> ProviderKind {
    match api {
        Api::Voyage => ProviderKind::Voyage,
        Api::OpenAi => ProviderKind::OpenAi,
        Api::Cohere => ProviderKind::Cohere,
        Api::HfInference => ProviderKind::HuggingFace,
        Api::Tei => ProviderKind::Tei,
    }
}

/// An endpoint config for `server`, its key in a variable of its own (tests run in parallel).
fn endpoint(server: &FakeProvider, api: Api, key: &str, var: &str) -> EndpointConfig {
    // SAFETY: each test uses its own variable name; nothing reads it concurrently.
    unsafe { std::env::set_var(var, key) };
    EndpointConfig {
        kind: kind_of(api),
        base_url: Some(server.base_url()),
        api_key_env: Some(var.to_string()),
        model: Some("test-model".into()),
        dimensions: Some(8),
        // Unlimited unless a test says otherwise.
        requests_per_minute: Some(0),
        tokens_per_minute: Some(0),
        ..Default::default()
    }
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_ms: 10,
        max_backoff_ms: 5_000,
    }
}

struct Run {
    result: Result<(), FatalError>,
    embedded: Vec<EmbeddedChunk>,
    dead: Vec<DeadLetter>,
}

async fn run(config: EmbedConfig, input: Vec<Chunk>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let embedder = match config.build_embedder() {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let mut embedded = Vec::new();
    let result = Topology::new(
        TopologyConfig::default(),
        store.clone(),
        Shutdown::default(),
    )
    .from_stream("chunks", stream::iter(input))
    .then_stream(config.stage(embedder))
    .run(|e| embedded.push(e))
    .await
    .map(|_| ());
    let dead = dead_letter::list(store.as_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    Run {
        result,
        embedded,
        dead,
    }
}

fn assert_vectors_match(embedded: &[EmbeddedChunk]) {
    for e in embedded {
        assert_eq!(
            e.embedding,
            fake_vector(&e.chunk.text, 8),
            "chunk {} got another input's vector",
            e.chunk.id
        );
    }
}

#[tokio::test]
async fn every_api_embeds_every_chunk_with_its_own_vector() {
    for (i, api) in [
        Api::Voyage,
        Api::OpenAi,
        Api::Cohere,
        Api::HfInference,
        Api::Tei,
    ]
    .into_iter()
    .enumerate()
    {
        let server = FakeProvider::start(FakeOptions::new(api)).await;
        let config = EmbedConfig {
            provider: endpoint(
                &server,
                api,
                "test-key-123",
                &format!("KASS_TEST_KEY_API_{i}"),
            ),
            batch_size: 7,
            ..Default::default()
        };
        let input = chunks(30, 12);
        let out = run(config, input.clone()).await;
        out.result.unwrap_or_else(|e| panic!("{api:?}: {e}"));
        assert!(out.dead.is_empty(), "{api:?}: {:?}", out.dead);
        assert_eq!(out.embedded.len(), 30, "{api:?}");
        assert_vectors_match(&out.embedded);
        let mut ids: Vec<_> = out.embedded.iter().map(|e| e.chunk.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 30, "{api:?}: a chunk embedded twice or lost");
        let log = server.log();
        assert!(log.iter().all(|l| l.status == 200), "{api:?}");
        assert!(
            log.iter().all(|l| l.inputs.len() <= 7),
            "{api:?}: batch_size exceeded"
        );
        assert_eq!(log.len(), 5, "{api:?}: 30 chunks in requests of 7");
        assert_eq!(out.embedded[0].model.name, "test-model");
        // The documented request fields.
        let body = &log[0].body;
        match api {
            Api::Voyage => assert_eq!(body["input_type"], json!("document")),
            Api::Cohere => {
                assert_eq!(body["input_type"], json!("search_document"));
                assert_eq!(body["embedding_types"], json!(["float"]));
            }
            Api::OpenAi => assert_eq!(body["dimensions"], json!(8)),
            Api::HfInference | Api::Tei => assert_eq!(body["normalize"], json!(true)),
        }
    }
}

#[tokio::test]
async fn a_wrong_key_stops_the_run_naming_the_endpoint_but_not_the_key() {
    let server = FakeProvider::start(FakeOptions::new(Api::Voyage)).await;
    let config = EmbedConfig {
        provider: endpoint(
            &server,
            Api::Voyage,
            "sk-wrong-secret",
            "KASS_TEST_KEY_WRONG",
        ),
        ..Default::default()
    };
    let out = run(config, chunks(3, 5)).await;
    let message = out
        .result
        .expect_err("a refused key must stop the run")
        .to_string();
    assert!(message.contains("endpoint `voyage`"), "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("sk-wrong-secret"), "{message}");
    assert_eq!(server.count(401), 1, "a 401 is not retried");
}

#[tokio::test]
async fn a_missing_key_is_a_configuration_error_naming_the_variable() {
    let config = EmbedConfig {
        provider: EndpointConfig {
            kind: ProviderKind::Cohere,
            api_key_env: Some("KASS_TEST_KEY_NEVER_SET".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let message = config.build_embedder().err().expect("no key").to_string();
    assert!(message.contains("KASS_TEST_KEY_NEVER_SET"), "{message}");
}

#[tokio::test]
async fn a_key_with_a_newline_is_a_configuration_error_naming_the_variable() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = EmbedConfig {
        provider: endpoint(
            &server,
            Api::OpenAi,
            "sk-pasted-0123\nsk-twice-4567",
            "KASS_TEST_KEY_NEWLINE",
        ),
        ..Default::default()
    };
    let message = config
        .build_embedder()
        .err()
        .expect("unsendable key")
        .to_string();
    assert!(
        message.contains("the API key in KASS_TEST_KEY_NEWLINE contains a newline"),
        "{message}"
    );
    assert!(!message.contains("sk-pasted-0123"), "{message}");
    assert!(server.log().is_empty(), "nothing is sent");
}

#[tokio::test]
async fn only_the_poison_chunk_is_dead_lettered() {
    for (i, api) in [Api::OpenAi, Api::Voyage, Api::Tei].into_iter().enumerate() {
        let mut options = FakeOptions::new(api);
        options.poison_marker = Some("POISON".into());
        let server = FakeProvider::start(options).await;
        let config = EmbedConfig {
            provider: endpoint(
                &server,
                api,
                "test-key-123",
                &format!("KASS_TEST_KEY_POISON_{i}"),
            ),
            batch_size: 16,
            ..Default::default()
        };
        let mut input = chunks(40, 10);
        input[13] = Chunk::new(
            "slack",
            "C1/poison",
            0,
            "an input with POISON in it".into(),
            Metadata::new(),
        );
        let out = run(config, input.clone()).await;
        out.result.unwrap_or_else(|e| panic!("{api:?}: {e}"));
        assert_eq!(out.embedded.len(), 39, "{api:?}");
        assert_vectors_match(&out.embedded);
        assert_eq!(out.dead.len(), 1, "{api:?}");
        let letter = &out.dead[0];
        assert_eq!(letter.item_id, input[13].id);
        assert_eq!(letter.error_type, "embed_input_refused");
        assert!(
            letter.reason.contains("too long")
                || letter.reason.contains("context length")
                || letter.reason.contains("less than 512"),
            "{api:?}: {}",
            letter.reason
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_they_pass() {
    let mut options = FakeOptions::new(Api::OpenAi);
    options.fail_first = 3;
    options.fail_status = 503;
    let server = FakeProvider::start(options).await;
    let config = EmbedConfig {
        provider: endpoint(&server, Api::OpenAi, "test-key-123", "KASS_TEST_KEY_503"),
        batch_size: 10,
        max_in_flight: Some(1),
        retry: fast_retry(5),
        ..Default::default()
    };
    let out = run(config, chunks(10, 5)).await;
    out.result.unwrap();
    assert_eq!(out.embedded.len(), 10);
    assert_eq!(server.count(503), 3);
    assert_eq!(server.count(200), 1);
}

#[tokio::test]
async fn a_provider_down_past_the_retries_dead_letters_its_chunks_and_the_run_goes_on() {
    let mut options = FakeOptions::new(Api::Cohere);
    options.fail_first = usize::MAX;
    options.fail_status = 500;
    let server = FakeProvider::start(options).await;
    let config = EmbedConfig {
        provider: endpoint(&server, Api::Cohere, "test-key-123", "KASS_TEST_KEY_DOWN"),
        batch_size: 4,
        retry: fast_retry(2),
        ..Default::default()
    };
    let input = chunks(10, 5);
    let out = run(config, input.clone()).await;
    out.result.expect("an unavailable provider is not fatal");
    assert!(out.embedded.is_empty());
    assert_eq!(out.dead.len(), 10, "every chunk kept, in the dead letters");
    assert!(out.dead.iter().all(|d| d.error_type == "embed_unavailable"));
    assert!(
        out.dead[0].reason.contains("HTTP 500"),
        "{}",
        out.dead[0].reason
    );
    assert_eq!(server.count(500), 3 * 2, "3 requests, 2 attempts each");
}

#[tokio::test]
async fn the_fallback_takes_over_when_the_primary_keeps_failing() {
    let mut broken = FakeOptions::new(Api::Voyage);
    broken.fail_first = usize::MAX;
    let primary = FakeProvider::start(broken).await;
    // An OpenAI-compatible mirror serving the same model.
    let mirror = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = EmbedConfig {
        provider: endpoint(
            &primary,
            Api::Voyage,
            "test-key-123",
            "KASS_TEST_KEY_PRIMARY",
        ),
        fallback: vec![endpoint(
            &mirror,
            Api::OpenAi,
            "test-key-123",
            "KASS_TEST_KEY_MIRROR",
        )],
        batch_size: 5,
        retry: fast_retry(2),
        ..Default::default()
    };
    let out = run(config, chunks(20, 5)).await;
    out.result.unwrap();
    assert!(out.dead.is_empty());
    assert_eq!(out.embedded.len(), 20);
    assert_vectors_match(&out.embedded);
    assert_eq!(mirror.count(200), 4);
    assert_eq!(primary.count(503), 8);
}

#[tokio::test]
async fn a_fallback_serving_another_model_is_refused() {
    let a = FakeProvider::start(FakeOptions::new(Api::Voyage)).await;
    let b = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let mut other = endpoint(&b, Api::OpenAi, "k", "KASS_TEST_KEY_OTHER_B");
    other.model = Some("text-embedding-3-small".into());
    other.dimensions = None;
    let config = EmbedConfig {
        provider: endpoint(&a, Api::Voyage, "k", "KASS_TEST_KEY_OTHER_A"),
        fallback: vec![other],
        ..Default::default()
    };
    let message = config
        .build_embedder()
        .err()
        .expect("mixed models")
        .to_string();
    assert!(message.contains("same model"), "{message}");
}

/// The server enforces 6 requests and 1,200 tokens per 1-second window. The client is told
/// the same limits: it finishes every chunk, and the server never sees more than the limit
/// plus the limiter's documented burst in any window.
#[tokio::test]
async fn configured_limits_hold_from_the_servers_side() {
    let mut options = FakeOptions::new(Api::Voyage);
    options.requests_per_window = Some(6);
    options.tokens_per_window = Some(1_200);
    options.window = Duration::from_secs(1);
    let server = FakeProvider::start(options).await;
    let mut ep = endpoint(&server, Api::Voyage, "test-key-123", "KASS_TEST_KEY_LIMITS");
    ep.requests_per_minute = Some(6);
    ep.tokens_per_minute = Some(1_200);
    ep.rate_window_ms = Some(1_000);
    let config = EmbedConfig {
        provider: ep,
        batch_size: 3,
        max_wait_ms: 20,
        max_in_flight: Some(4),
        retry: fast_retry(10),
        ..Default::default()
    };
    // 36 chunks of ~30 server tokens each: ~1,100 tokens, at least 12 requests: > 2 windows.
    let out = run(config, chunks(36, 10)).await;
    out.result.unwrap();
    assert!(out.dead.is_empty(), "{:?}", out.dead);
    assert_eq!(out.embedded.len(), 36);
    let (requests, tokens) = server.max_in_any_window();
    // Request burst 1; token burst = one request's cap (tpm / rpm = 200 estimated tokens).
    assert!(requests <= 6 + 1, "{requests} requests in one window");
    assert!(tokens <= 1_200 + 200, "{tokens} tokens in one window");
    assert_eq!(
        server.count(429),
        0,
        "the limiter kept under the server's limit"
    );
}

/// A client that does not know the limit gets 429s; it honours Retry-After (seconds, and as
/// an HTTP date) and still finishes with nothing lost.
#[tokio::test]
async fn unknown_limits_are_learned_from_429_and_retry_after() {
    for (i, as_date) in [false, true].into_iter().enumerate() {
        let mut options = FakeOptions::new(Api::OpenAi);
        options.requests_per_window = Some(4);
        options.window = Duration::from_secs(1);
        options.retry_after_as_date = as_date;
        let server = FakeProvider::start(options).await;
        let mut provider = endpoint(
            &server,
            Api::OpenAi,
            "test-key-123",
            &format!("KASS_TEST_KEY_429_{i}"),
        );
        // The server's minute scaled to 1 s, as the client's: the pacer learns the limit from
        // the requests accepted over its window (a minute by default, where this test took
        // 100 s at 3.6 requests per learned minute).
        provider.rate_window_ms = Some(1_000);
        let config = EmbedConfig {
            provider,
            batch_size: 2,
            max_in_flight: Some(4),
            retry: fast_retry(10),
            ..Default::default()
        };
        let out = run(config, chunks(16, 5)).await;
        out.result.unwrap();
        assert!(out.dead.is_empty(), "{:?}", out.dead);
        assert_eq!(out.embedded.len(), 16);
        assert_vectors_match(&out.embedded);
        assert!(server.count(429) > 0, "the server did limit");
        assert_eq!(server.count(200), 8);
    }
}

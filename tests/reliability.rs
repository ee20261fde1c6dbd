//! Nothing lost, whatever arrives: batch files and events no one on the team wrote, objects
//! the loader cannot use, Chroma going away mid-run. Each test goes through the `kass` binary
//! against real servers started here (moto S3 + SQS, `chroma run`, a local OpenAI-shaped
//! embedding server that counts its calls) and counts what ends where: chunks expected,
//! stored, dead-lettered with a reason, duplicated.

mod support;

#[path = "support/split_world.rs"]
mod split_world;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fake_provider::{Api, FakeOptions, FakeProvider};
use kass_pipeline::batch::{Batch, Compression};
use kass_pipeline::store::ObjectStore;
use kass_pipeline::{Chunk, Metadata};
use serde_json::{json, Value};
use split_world::{s3_event, World, BUCKET, QUEUE};
use support::{kass, ChromaServer};

/// Every record of a collection: id -> metadata.
async fn chroma_records(url: &str, collection: &str) -> BTreeMap<String, Value> {
    let records = support::chroma_get(url, collection, json!({"include": ["metadatas"]}))
        .await
        .unwrap_or_else(|| panic!("no collection {collection}"));
    let ids = records["ids"].as_array().unwrap();
    let metadatas = records["metadatas"].as_array().unwrap();
    ids.iter()
        .zip(metadatas)
        .map(|(id, m)| (id.as_str().unwrap().to_string(), m.clone()))
        .collect()
}

/// Dead letters under a local store: (stage, error_type, reason).
fn letters(store: &Path) -> Vec<(String, String, String)> {
    support::files_under(store)
        .into_iter()
        .filter(|f| f.starts_with("_dead_letter/"))
        .map(|f| {
            let v: Value = serde_json::from_slice(&std::fs::read(store.join(&f)).unwrap()).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("stage"), s("error_type"), s("reason"))
        })
        .collect()
}

/// A kass.toml over a local store, a real Chroma and the counting provider.
fn local_config(dir: &Path, chroma: &ChromaServer, provider: &FakeProvider) -> std::path::PathBuf {
    let path = dir.join("kass.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n\n[[sources]]\ntype = \"jsonl\"\nname = \"unused\"\npath = \"{}\"\n\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"counted\"\ndimensions = 8\napi_key_env = \"KASS_RELIABILITY_KEY\"\n{}",
            dir.join("store").display(),
            dir.join("none.jsonl").display(),
            provider.base_url(),
            chroma.config("kept"),
        ),
    )
    .unwrap();
    path
}

async fn kass_in(config: &Path, args: &[&str]) -> std::process::Output {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        support::run_ok(
            kass()
                .env("KASS_RELIABILITY_KEY", "test-key-123")
                .args(&args)
                .arg("--config")
                .arg(&config),
        )
    })
    .await
    .unwrap()
}

fn seed_chunk(text: &str, channel: &str, at: &str, n: i64) -> Value {
    json!({"text": text, "metadata": {"source": "legacy", "channel": channel, "start_time": at, "message_count": n}})
}

fn write(store: &Path, key: &str, bytes: &[u8]) {
    let path = store.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_the_seed_and_of_foreign_producers_are_stored_and_stay() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = local_config(dir.path(), &chroma, &provider);
    let store = dir.path().join("store");
    let day = "legacy/chunked/year=2025/month=10/day=06";

    // Two batches exactly in the seed's format: no schema_version, no ids, chunks at the same
    // positions of different documents.
    let seed = |chunks: Vec<Value>| {
        serde_json::to_vec(
            &json!({"batch_id": "20251006_120000_a1b2", "timestamp": "2025-10-06T12:00:00Z",
            "source": "legacy", "chunk_count": chunks.len(), "chunks": chunks}),
        )
        .unwrap()
    };
    let a = format!("{day}/batch_20251006_120000_a1b2.json");
    let b = format!("{day}/batch_20251006_130000_c3d4.json");
    write(
        &store,
        &a,
        &seed(vec![
            seed_chunk(
                "ana: The release is on Friday.",
                "general",
                "2025-10-06T09:01:00Z",
                1,
            ),
            seed_chunk(
                "ben: Code freeze is Thursday.",
                "general",
                "2025-10-06T09:03:00Z",
                1,
            ),
        ]),
    );
    write(
        &store,
        &b,
        &seed(vec![
            seed_chunk(
                "cho: The build is red again.",
                "dev",
                "2025-10-06T10:01:00Z",
                1,
            ),
            seed_chunk(
                "dan: Fixed by reverting the cache change.",
                "dev",
                "2025-10-06T10:05:00Z",
                1,
            ),
        ]),
    );
    // A schema-1 batch from a foreign producer: ids, empty metadata.
    let foreign = format!("{day}/batch_20251006_140000_e5f6.json");
    write(&store, &foreign, &serde_json::to_vec(&json!({"schema_version": 1, "batch_id": "f",
        "timestamp": "2025-10-06T14:00:00Z", "source": "legacy", "chunk_count": 2,
        "chunks": [{"id": "foreign-1", "text": "Runbook: restart the ingester.", "metadata": {}},
                   {"id": "foreign-2", "text": "Runbook: rotate the keys monthly.", "metadata": {}}]})).unwrap());
    // What Python writes by default: a zone-less utcnow() time, nulls, nested objects, lists of
    // numbers, a lone surrogate from a cut emoji, and one blank chunk among good ones.
    let python = format!("{day}/batch_20251006_150000_a7b8.json");
    write(&store, &python, br#"{"batch_id": "p", "timestamp": "2025-10-06T15:00:00.123456", "source": "legacy", "chunk_count": 4, "chunks": [
        {"text": "eve: Shipped \ud83d the fix", "metadata": {"thread": null, "author": {"name": "Eve", "id": 7}, "scores": [1, 2.5]}},
        {"text": "   ", "metadata": {}},
        {"text": "fay: Thanks!", "metadata": null},
        {"text": "gus: Closing the incident.", "metadata": {"labels": ["ops"]}}]}"#);

    // One after the other, as separate deliveries.
    for key in [&a, &b, &foreign, &python] {
        kass_in(&config, &["embed", "--keys", key]).await;
    }
    let records = chroma_records(&chroma.url(), "kept").await;
    assert_eq!(records.len(), 2 + 2 + 2 + 3, "{records:#?}");
    for (id, m) in &records {
        assert!(
            m["document_id"].as_str().is_some_and(|d| !d.is_empty()),
            "{id}: {m}"
        );
        assert!(m["content_hash"].as_str().is_some(), "{id}: {m}");
    }
    assert!(records.contains_key("foreign-1") && records.contains_key("foreign-2"));
    let eve = records
        .values()
        .find(|m| m["author.name"] == "Eve")
        .expect("nested metadata flattened");
    assert_eq!(eve["scores"], json!(["1", "2.5"]));
    let blank: Vec<_> = letters(&store)
        .into_iter()
        .filter(|(_, kind, _)| kind == "malformed_chunk")
        .collect();
    assert_eq!(blank.len(), 1, "{blank:?}");
    assert!(
        blank[0].2.contains("chunks[1].text") && blank[0].2.contains("blank"),
        "{blank:?}"
    );

    // Delivered again: nothing embedded, nothing deleted.
    let calls = provider.log().len();
    for key in [&a, &b, &foreign, &python] {
        kass_in(&config, &["embed", "--keys", key]).await;
    }
    assert_eq!(
        provider.log().len(),
        calls,
        "stored chunks are not embedded again"
    );
    assert_eq!(chroma_records(&chroma.url(), "kept").await.len(), 9);

    // An event an older kass could not read (SNS-wrapped), kept as a dead letter: reprocess
    // reads it now and embeds the batch it names.
    let late = format!("{day}/batch_20251006_160000_c9d0.json");
    write(
        &store,
        &late,
        &seed(vec![seed_chunk(
            "hal: Announced late.",
            "ops",
            "2025-10-06T16:00:00Z",
            1,
        )]),
    );
    let body =
        json!({"Type": "Notification", "Message": s3_event("any", &late).to_string()}).to_string();
    write(
        &store,
        "_dead_letter/s3_events/2025-10-06/160000_0123456789ab_m1.json",
        &serde_json::to_vec(&json!({
        "stage": "s3_events", "source": "sqs", "item_id": "m1", "error_type": "unknown_event",
        "reason": "not an S3 event notification: no `Records` array",
        "failed_at": "2025-10-06T16:00:00Z", "item": body}))
        .unwrap(),
    );
    let out = kass_in(&config, &["dead-letters", "reprocess"]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        chroma_records(&chroma.url(), "kept").await.len(),
        10,
        "{text}"
    );
    assert!(
        letters(&store)
            .iter()
            .all(|(stage, _, _)| stage != "s3_events"),
        "{text}"
    );
}

/// A v1 batch of `n` chunks of one document, as kass writes it.
fn batch(source: &str, document: &str, n: usize, hour: u32) -> (String, Vec<u8>) {
    let at = Utc.with_ymd_and_hms(2025, 10, 6, hour, 0, 0).unwrap();
    let chunks: Vec<Chunk> = (0..n)
        .map(|i| {
            Chunk::new(
                source,
                document,
                i,
                format!("{document} part {i}"),
                Metadata::new(),
            )
        })
        .collect();
    let id = format!("20251006_{hour:02}0000_abcd");
    let key = kass_pipeline::batch::batch_key(source, at, &id, Compression::None);
    (
        key,
        Batch::new(id, at, source, chunks).encode(Compression::None),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_object_or_event_stops_the_listener_and_good_batches_are_stored() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    let (good, good_bytes) = batch("slack", "C1/2025-10-06", 3, 9);
    let (sns, sns_bytes) = batch("slack", "C2/2025-10-06", 2, 10);
    let (bridge, bridge_bytes) = batch("slack", "C3/2025-10-06", 2, 11);
    for (key, bytes) in [
        (&good, good_bytes.clone()),
        (&sns, sns_bytes),
        (&bridge, bridge_bytes),
    ] {
        w.store.put(key, bytes).await.unwrap();
    }
    // Legal in S3, refused by kass's key grammar: a `//` in the key.
    let slashes = "slack/chunked//year=2025/batch_x.json";
    w.store
        .client()
        .put_object()
        .bucket(BUCKET)
        .key(slashes)
        .body(good_bytes.into())
        .send()
        .await
        .unwrap();
    let bodies = vec![
        s3_event(BUCKET, &good).to_string(),
        s3_event(BUCKET, slashes).to_string(),
        s3_event(BUCKET, "slack/chunked/year=2025/month=10/day=06/batch_gone.json").to_string(),
        "this is not an event".to_string(),
        json!({"Type": "Notification", "MessageId": "m1", "TopicArn": "arn:aws:sns:us-east-1:1:kass",
               "Message": s3_event(BUCKET, &sns).to_string()}).to_string(),
        json!({"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
               "detail": {"version": "0", "bucket": {"name": BUCKET},
                          "object": {"key": bridge, "size": 10, "sequencer": "02"}}}).to_string(),
        s3_event("someone-elses-bucket", &good).to_string(),
    ];
    for body in &bodies {
        w.sqs
            .send_message()
            .queue_url(&w.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let out = w.listen_until_idle().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = w
        .chunk_ids(&[good.clone(), sns.clone(), bridge.clone()])
        .await;
    assert_eq!(expected.len(), 7);
    assert_eq!(w.chroma_count().await, 7, "{stdout}");
    assert_eq!(w.queue_depth().await, 0, "every message is done: {stdout}");
    assert!(stdout.contains("other_bucket: 1"), "{stdout}");

    let mut kinds = BTreeSet::new();
    for key in w.store.list("_dead_letter/").await.unwrap() {
        let letter: Value = serde_json::from_slice(&w.store.get(&key).await.unwrap()).unwrap();
        kinds.insert(letter["error_type"].as_str().unwrap().to_string());
        let reason = letter["reason"].as_str().unwrap();
        match letter["error_type"].as_str().unwrap() {
            "invalid_batch_key" => assert!(reason.contains(slashes), "{reason}"),
            "missing_batch" => assert!(reason.contains("batch_gone.json"), "{reason}"),
            "unknown_event" => assert!(reason.contains("invalid JSON"), "{reason}"),
            other => panic!("unexpected letter {other}: {reason}"),
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");

    // The same objects through `kass embed --prefix`: one unusable object costs only itself.
    let prefixed = w.run(&["embed", "--prefix", "slack/chunked/"]).await;
    let text = String::from_utf8_lossy(&prefixed.stdout).into_owned();
    assert!(
        text.contains("4 batch files") && text.contains("1 dead letter(s)"),
        "{text}"
    );
    assert_eq!(w.chroma_count().await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_listener_with_status_130() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    let mut child = w
        .kass()
        .args([
            "embed",
            "--listen",
            &format!("sqs://{QUEUE}"),
            "--wait",
            "1",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let status = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader};
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("listening on") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let killed = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        lines.for_each(drop);
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
}

#[test]
fn embed_without_a_target_is_a_usage_error() {
    let out = kass().args(["embed"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--keys") && stderr.contains("--listen"),
        "{stderr}"
    );
}

/// Sets `line` at the top of `[table]` in a kass.toml.
fn set_in_table(config: &Path, table: &str, line: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen(&format!("{table}\n"), &format!("{table}\n{line}\n"), 1);
    std::fs::write(config, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroma_outage_holds_embedding_and_leaves_no_false_letters() {
    let mut slow = FakeOptions::new(Api::OpenAi);
    slow.latency = Duration::from_millis(200);
    let mut w = World::start(slow, "\n[embed]\nbatch_size = 2\nmax_in_flight = 1\n").await;
    set_in_table(&w.config, "[chroma]", "outage_hold_secs = 120");
    w.setup_triggers("slack,wiki").await;
    w.run(&["fetch"]).await;
    let mut keys = w.batch_keys("slack").await;
    keys.extend(w.batch_keys("wiki").await);
    let unique = w.chunk_ids(&keys).await;
    assert!(unique.len() >= 5, "{}", unique.len());

    let mut listener = w.kass();
    listener.args([
        "embed",
        "--listen",
        &format!("sqs://{QUEUE}"),
        "--until-idle",
        "--wait",
        "2",
        "--visibility-timeout",
        "5",
    ]);
    let run = tokio::task::spawn_blocking(move || listener.output().unwrap());
    // Chroma goes away once embedding is under way, and comes back 4 s later where the
    // listener expects it.
    while w.provider.log().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let chroma = w.chroma.take().unwrap();
    let port = chroma.port;
    let path = chroma.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    w.chroma = Some(ChromaServer::start_on(&path, port));
    let out = run.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(w.chroma_count().await, unique.len() as u64, "{stdout}");
    assert_eq!(w.queue_depth().await, 0, "{stdout}");
    let embedded: usize = w
        .provider
        .log()
        .iter()
        .filter(|l| l.status == 200)
        .map(|l| l.inputs.len())
        .sum();
    let per_chunk = embedded as f64 / unique.len() as f64;
    eprintln!(
        "embedding inputs per unique chunk across the outage: {per_chunk:.2} ({embedded} / {})",
        unique.len()
    );
    assert!(
        per_chunk <= 1.1 + 2.0 / unique.len() as f64,
        "{per_chunk}: {stdout}"
    );
    let left = w.store.list("_dead_letter/").await.unwrap();
    assert!(
        left.is_empty(),
        "letters of chunks stored later are retired: {left:?}"
    );
}

/// An S3 API that refuses one object (403, as a bucket policy or KMS would) and throttles
/// another (503 SlowDown), as S3 documents those errors.
async fn refusing_s3() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    async fn answer(uri: axum::http::Uri) -> axum::response::Response {
        let (status, code) = if uri.path().contains("denied") {
            (StatusCode::FORBIDDEN, "AccessDenied")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
        };
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code}</Message><RequestId>r</RequestId></Error>");
        (status, [("content-type", "application/xml")], body).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(answer);
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_object_is_told_from_a_throttled_one() {
    use kass_pipeline::store::{S3Store, S3StoreConfig, StoreError};
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let (url, server) = refusing_s3().await;
    let store = S3Store::connect(&S3StoreConfig {
        bucket: "b".into(),
        endpoint_url: Some(url),
        region: Some("us-east-1".into()),
        force_path_style: true,
        max_attempts: 1,
    })
    .await;
    let denied = store.get("slack/chunked/denied.json").await.unwrap_err();
    assert!(matches!(denied, StoreError::Refused { .. }), "{denied}");
    assert!(!denied.is_transient());
    let slow = store.get("slack/chunked/slow.json").await.unwrap_err();
    assert!(matches!(slow, StoreError::Io { .. }), "{slow}");
    assert!(slow.is_transient());
    server.abort();
}

/// A pass-through to an S3 API that answers the first GET of every key holding `flaky` with
/// 503 SlowDown, as S3 does when a prefix is throttled.
async fn throttling_proxy(upstream: String) -> (String, tokio::task::JoinHandle<()>) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};
    let refused: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (refused, http, upstream) = (refused.clone(), http.clone(), upstream.clone());
            async move {
                let path = uri.path().to_string();
                if method == Method::GET
                    && path.contains("flaky")
                    && refused.lock().unwrap().insert(path)
                {
                    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    return (StatusCode::SERVICE_UNAVAILABLE, xml).into_response();
                }
                let target = format!("{upstream}{}", uri.path_and_query().map_or("", |p| p.as_str()));
                let mut forwarded = http.request(method, target).body(body);
                for (name, value) in &headers {
                    if name != "host" {
                        forwarded = forwarded.header(name, value);
                    }
                }
                let answer = forwarded.send().await.unwrap();
                let status = answer.status();
                let mut out = axum::http::Response::builder().status(status.as_u16());
                for (name, value) in answer.headers() {
                    if name != "transfer-encoding" && name != "content-length" {
                        out = out.header(name, value);
                    }
                }
                out.body(axum::body::Body::from(answer.bytes().await.unwrap()))
                    .unwrap()
                    .into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_batch_waits_for_redelivery_alone_and_its_letter_is_retired() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    let (proxy, server) = throttling_proxy(w.moto.endpoint()).await;
    let (good, good_bytes) = batch("slack", "C1/2025-10-06", 2, 9);
    let (flaky, flaky_bytes) = batch("slack", "C9/flaky", 3, 10);
    let flaky = flaky.replace("batch_", "batch_flaky_");
    w.store.put(&good, good_bytes).await.unwrap();
    w.store.put(&flaky, flaky_bytes).await.unwrap();
    for key in [&good, &flaky] {
        w.sqs
            .send_message()
            .queue_url(&w.queue_url)
            .message_body(s3_event(BUCKET, key).to_string())
            .send()
            .await
            .unwrap();
    }
    // One try per request, so the SDK does not retry the 503 away before kass sees it.
    let mut text = std::fs::read_to_string(&w.config).unwrap();
    text.push_str(&format!(
        "\n[store]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\nmax_attempts = 1\n"
    ));
    std::fs::write(&w.config, text).unwrap();
    let listen = |w: &World| {
        let mut cmd = w.kass();
        cmd.env("KASS_S3_ENDPOINT_URL", &proxy).args([
            "embed",
            "--listen",
            &format!("sqs://{QUEUE}"),
            "--until-idle",
            "--wait",
            "1",
            "--visibility-timeout",
            "2",
        ]);
        tokio::task::spawn_blocking(move || support::run_ok(&mut cmd))
    };
    let first = listen(&w).await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(
        w.chroma_count().await,
        2,
        "the good batch is stored: {stdout}"
    );
    assert_eq!(
        w.queue_depth().await,
        1,
        "only the throttled batch's message stays: {stdout}"
    );
    let letters = w.store.list("_dead_letter/batch_loader/").await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: Value = serde_json::from_slice(&w.store.get(&letters[0]).await.unwrap()).unwrap();
    assert_eq!(letter["error_type"], "store_unavailable", "{letter}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = listen(&w).await.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert_eq!(w.chroma_count().await, 5, "{stdout}");
    assert_eq!(w.queue_depth().await, 0, "{stdout}");
    let left = w.store.list("_dead_letter/").await.unwrap();
    assert!(
        left.is_empty(),
        "the batch was read on redelivery: {left:?}"
    );
    server.abort();
}

//! Many workers, one queue: the embedder Lambda behind an SQS event source mapping (partial
//! batch responses), against real servers started here (moto, Chroma, a local OpenAI-shaped
//! embedding server) and a local Lambda Runtime API.

mod support;

#[path = "support/split_world.rs"]
mod split_world;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::time::Duration;

use fake_provider::{Api, FakeOptions};
use kass_pipeline::store::ObjectStore;
use serde_json::{json, Value};
use split_world::{s3_event, World, BUCKET, KEY_ENV};

/// An SQS event as Lambda's event source mapping delivers it: one record per message, each
/// body the S3 notification S3 sent to the queue.
fn sqs_event(messages: &[(&str, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("AQEB-{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1759741203123",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1759741203130"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kass-events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// One SQS event of four messages: two good batches, one poison batch (a batch file that is
/// not JSON) and one body that is no event at all. The function answers exactly the poison
/// batch's message in `batchItemFailures` (SQS delivers only that one again, and after the
/// redrive's maxReceiveCount parks it in the dead-letter queue); the unreadable body is
/// dead-lettered and done (delivering it again cannot help); the good batches are in Chroma.
/// The direct S3 invocation still works beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_event_answers_only_the_poison_batch_as_failed() {
    use runtime_api::{Outcome, RuntimeApi};
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    w.run(&["fetch"]).await;
    // Two Slack batches (one for the direct invocation at the end) and the wiki's.
    let mut keys = w.batch_keys("slack").await;
    assert!(keys.len() >= 2, "{keys:?}");
    keys.truncate(2);
    keys.extend(w.batch_keys("wiki").await);
    keys.swap(1, 2);
    let poison = "slack/chunked/year=2025/month=01/day=01/batch_poison.json";
    w.store
        .put(poison, b"{\"schema_version\": 3, \"chunks\": [".to_vec())
        .await
        .unwrap();

    let api = RuntimeApi::start().await;
    let config_text = std::fs::read_to_string(&w.config).unwrap();
    let mut embedder = w
        .lambda(
            env!("CARGO_BIN_EXE_kass-embedder"),
            api.env("kass-embedder"),
            &config_text,
        )
        .env(KEY_ENV, "test-key-123")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let body = |key: &str| s3_event(BUCKET, key).to_string();
    let event = sqs_event(&[
        ("msg-good-1", body(&keys[0])),
        ("msg-poison", body(poison)),
        ("msg-good-2", body(&keys[1])),
        ("msg-garbage", "{this is not an event".to_string()),
    ]);
    let id = api.invoke(event);
    let outcome = api.outcome(&id, Duration::from_secs(120)).await;
    let Outcome::Response(answer) = &outcome else {
        embedder.kill().unwrap();
        let mut log = String::new();
        use std::io::Read;
        embedder
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        panic!("the SQS event failed as a whole: {outcome:?}\n{log}")
    };
    assert_eq!(
        answer,
        &json!({"batchItemFailures": [{"itemIdentifier": "msg-poison"}]}),
        "only the poison batch's message is delivered again"
    );
    let expected = w.chunk_ids(&keys[..2]).await;
    assert_eq!(w.chroma_count().await, expected.len() as u64);
    let batch_letters = w.store.list("_dead_letter/batch_loader/").await.unwrap();
    assert_eq!(batch_letters.len(), 1, "{batch_letters:?}");
    let event_letters = w.store.list("_dead_letter/s3_events/").await.unwrap();
    assert_eq!(event_letters.len(), 1, "{event_letters:?}");

    // Delivered again (SQS's retry of the failed item): still the only failure, nothing doubled.
    let id = api.invoke(sqs_event(&[
        ("msg-poison", body(poison)),
        ("msg-good-1", body(&keys[0])),
    ]));
    match api.outcome(&id, Duration::from_secs(60)).await {
        Outcome::Response(answer) => assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "msg-poison"}]})
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.chroma_count().await, expected.len() as u64);

    // The direct S3 invocation (no queue) still works.
    let id = api.invoke(s3_event(BUCKET, &keys[2]));
    match api.outcome(&id, Duration::from_secs(60)).await {
        Outcome::Response(done) => {
            let added = w.chunk_ids(&keys[2..3]).await.difference(&expected).count();
            assert!(added > 0);
            assert_eq!(done["stored"], added as u64, "{done}");
            assert_eq!(w.chroma_count().await, (expected.len() + added) as u64);
        }
        other => panic!("{other:?}"),
    }
    embedder.kill().unwrap();
    embedder.wait().unwrap();
}

/// Three `kass embed --listen` workers on one queue against a provider that allows `LIMIT`
/// requests per window for the whole account, strictly (429 beyond). With `workers = 3` each
/// keeps to its share and paces itself adaptively: the provider never sees more than the limit
/// plus the documented burst (one request per worker) in any window, the workers together
/// still use at least 90 % of it while the queue has work for all three, and every chunk is
/// stored exactly once. The visibility timeout (3 s) is shorter than a poll's work, so this
/// also proves a message being worked on stays invisible to the other workers (its visibility
/// is extended): no text is embedded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_listeners_share_one_provider_budget() {
    const LIMIT: usize = 12;
    const WORKERS: usize = 3;
    let window = Duration::from_millis(1000);
    let mut strict = FakeOptions::new(Api::OpenAi);
    strict.requests_per_window = Some(LIMIT);
    strict.window = window;
    let w = World::start(strict, "[embed]\nbatch_size = 3\n").await;
    // The account's limit, shared by three workers, counted over the test's short window.
    let config = std::fs::read_to_string(&w.config).unwrap().replacen(
        &format!("api_key_env = \"{KEY_ENV}\"\n"),
        &format!(
            "api_key_env = \"{KEY_ENV}\"\nrequests_per_minute = {LIMIT}\ntokens_per_minute = 0\nrate_window_ms = {}\nworkers = {WORKERS}\n",
            window.as_millis()
        ),
        1,
    );
    std::fs::write(&w.config, config).unwrap();
    let docs: String = (0..300)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("wiki/page-{i}"), "kind": "text",
                       "text": format!("Runbook page {i}: restart worker {i} after the deploy of service {}.", i * 7)})
            )
        })
        .collect();
    std::fs::write(w.dir.join("wiki.jsonl"), docs).unwrap();
    w.setup_triggers("slack,wiki").await;
    w.run(&["fetch"]).await;
    let mut keys = w.batch_keys("slack").await;
    keys.extend(w.batch_keys("wiki").await);
    let expected = w.chunk_ids(&keys).await;
    assert!(expected.len() > 250, "{}", expected.len());

    let listeners: Vec<_> = (0..WORKERS)
        .map(|i| {
            let mut cmd = w.kass();
            cmd.args([
                "embed",
                "--listen",
                &format!("sqs://{}", split_world::QUEUE),
                "--until-idle",
                "--wait",
                "1",
                "--visibility-timeout",
                "3",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(w.dir.join(format!("listener-{i}.log"))).unwrap())
            .spawn()
            .unwrap()
        })
        .collect();
    // The moment no message is left waiting: until then every worker has work.
    let mut drained_at = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut children = listeners;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        assert!(
            std::time::Instant::now() < deadline,
            "listeners did not finish"
        );
        if drained_at.is_none() && visible_messages(&w).await == 0 {
            drained_at = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, child) in children.iter_mut().enumerate() {
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(w.dir.join(format!("listener-{i}.log"))).unwrap();
        assert!(status.success(), "listener {i} failed: {status}\n{log}");
    }

    // Nothing lost, nothing doubled, the queue empty.
    assert_eq!(w.chroma_count().await, expected.len() as u64);
    assert_eq!(w.queue_depth().await, 0);
    let log = w.provider.log();
    let mut sent = std::collections::HashMap::new();
    for entry in log.iter().filter(|l| l.status == 200) {
        for text in &entry.inputs {
            *sent.entry(text.clone()).or_insert(0) += 1;
        }
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "embedded more than once: {}", twice.len());

    // Never more than the limit plus one request per worker in any window.
    let (most, _) = w.provider.max_in_any_window();
    let rejected = w.provider.count(429);
    assert!(
        most <= LIMIT + WORKERS,
        "{most} requests in one window (limit {LIMIT}, burst {WORKERS}); {rejected} answered 429"
    );
    // At least 90 % of the limit while all three had work.
    let first = log.iter().map(|l| l.at).min().unwrap();
    let drained_at = drained_at.expect("the queue drained");
    let busy = drained_at.duration_since(first);
    assert!(busy >= window * 3, "too short to measure a rate: {busy:?}");
    let accepted = log
        .iter()
        .filter(|l| l.status == 200 && l.at < drained_at)
        .count();
    let achieved = accepted as f64 / (busy.as_secs_f64() / window.as_secs_f64());
    eprintln!(
        "three workers: {accepted} requests in {busy:?}: {achieved:.2} per window of {LIMIT} allowed; most in one window {most}; {rejected} answered 429; {} requests in all",
        log.len()
    );
    assert!(
        achieved >= 0.9 * LIMIT as f64,
        "{achieved:.2} requests per window, under 90 % of {LIMIT}"
    );
}

async fn visible_messages(w: &World) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    w.sqs
        .get_queue_attributes()
        .queue_url(&w.queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&A::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

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

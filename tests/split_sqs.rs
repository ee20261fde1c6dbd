//! The split pipeline against real servers started here: a moto server (S3 with event
//! notifications to SQS), a real Chroma, and a local OpenAI-shaped embedding server.
//! `kass setup-triggers` -> `kass fetch` into the bucket -> notifications on the queue ->
//! `kass embed --listen` -> Chroma holds exactly the unique chunks.

mod support;

#[path = "support/split_world.rs"]
mod split_world;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use fake_provider::{Api, FakeOptions};
use kass_pipeline::store::ObjectStore;
use split_world::{World, BUCKET, KEY_ENV, QUEUE};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An unrelated rule someone else owns on the same bucket: `notes/` objects to the same queue.
fn unrelated_rule(queue_arn: &str) -> QueueConfiguration {
    QueueConfiguration::builder()
        .id("someone-elses-notes")
        .queue_arn(queue_arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("notes/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_then_listen_stores_exactly_the_unique_chunks() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    w.store
        .client()
        .put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(unrelated_rule(&w.queue_arn))
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Only slack is announced at first: the wiki batch is written without an event.
    w.setup_triggers("slack").await;
    w.run(&["fetch"]).await;
    let slack_keys = w.batch_keys("slack").await;
    let wiki_keys = w.batch_keys("wiki").await;
    assert!(
        !slack_keys.is_empty() && wiki_keys.len() == 1,
        "{slack_keys:?} {wiki_keys:?}"
    );

    // Re-running setup with both sources is idempotent and keeps the unrelated rule.
    for _ in 0..2 {
        w.setup_triggers("slack,wiki").await;
    }
    let check = w
        .run(&[
            "check-triggers",
            "--bucket",
            BUCKET,
            "--sources",
            "slack,wiki,gitlab",
        ])
        .await;
    let listing = stdout(&check);
    assert!(listing.contains("someone-elses-notes"), "{listing}");
    assert!(listing.contains("5 notification rule(s)"), "{listing}");
    let warnings = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(
        warnings.contains("source `gitlab` has no ObjectCreated rule"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("`slack`") && !warnings.contains("`wiki`"),
        "{warnings}"
    );

    // The wiki batch, copied under a key with spaces and non-ASCII characters: announced
    // URL-encoded, embedded from the decoded key. A notes/ object arrives through the
    // unrelated rule and is skipped.
    let odd_key = "wiki/chunked/year=2025/month=10/day=06/batch_copy été 1.json";
    let wiki_batch = w.store.get(&wiki_keys[0]).await.unwrap();
    w.store.put(odd_key, wiki_batch).await.unwrap();
    w.store
        .put("notes/readme.json", b"{}".to_vec())
        .await
        .unwrap();

    let out = w.listen_until_idle().await;
    let report = stdout(&out);
    assert!(report.contains("not_a_batch: 1"), "{report}");
    assert!(
        report.contains("test_event: "),
        "moto sends a test event: {report}"
    );
    assert!(report.contains("0 dead letter(s)"), "{report}");

    let mut expected = w.chunk_ids(&slack_keys).await;
    expected.extend(w.chunk_ids(&[odd_key.to_string()]).await);
    assert_eq!(w.chroma_count().await, expected.len() as u64, "{report}");
    assert_eq!(w.queue_depth().await, 0, "every message deleted once done");

    // Announced again (S3 delivers at least once): nothing new is embedded.
    let calls = w.provider.log().len();
    w.store
        .put(odd_key, w.store.get(odd_key).await.unwrap())
        .await
        .unwrap();
    let again = w.listen_until_idle().await;
    assert!(
        stdout(&again).contains("1 batch files"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        w.provider.log().len(),
        calls,
        "no embedding call for stored chunks"
    );
    assert_eq!(w.chroma_count().await, expected.len() as u64);
}

/// The embedder killed mid-batch: its message was not deleted, reappears after the
/// visibility timeout, and a new listener completes it; nothing lost, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_leaves_its_message_for_the_next() {
    let mut slow = FakeOptions::new(Api::OpenAi);
    slow.latency = Duration::from_millis(400);
    // Small requests, one at a time: the kill lands between them.
    let w = World::start(slow, "[embed]\nbatch_size = 2\nmax_in_flight = 1\n").await;
    w.setup_triggers("slack,wiki").await;
    w.run(&["fetch"]).await;
    let mut keys = w.batch_keys("slack").await;
    keys.extend(w.batch_keys("wiki").await);
    let expected = w.chunk_ids(&keys).await;

    let mut listener = w.kass();
    listener.args([
        "embed",
        "--listen",
        &format!("sqs://{QUEUE}"),
        "--visibility-timeout",
        "3",
        "--wait",
        "1",
    ]);
    let mut child = listener
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while it is embedding (the first requests have reached the provider).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.provider.log().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never embedded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        w.queue_depth().await > 0,
        "the unfinished messages are still queued"
    );
    assert!(
        w.chroma_count().await < expected.len() as u64,
        "killed before the end"
    );

    // After the visibility timeout the messages are delivered again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    w.listen_until_idle().await;
    assert_eq!(w.chroma_count().await, expected.len() as u64);
    assert_eq!(w.queue_depth().await, 0);
    let _ = Path::new(&w.dir);
}

#[path = "support/runtime_api.rs"]
mod runtime_api;

/// An S3 event for `key` as S3 sends it (the key form-encoded), from the shipped sample.
fn s3_event(key: &str) -> serde_json::Value {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../examples/events/s3-object-created.json")).unwrap();
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    event["Records"][0]["s3"]["object"]["key"] = serde_json::json!(encoded);
    event["Records"][0]["s3"]["bucket"]["name"] = serde_json::json!(BUCKET);
    event
}

/// Both Lambda binaries through a real Runtime API round trip (next -> response / error):
/// the fetcher on its schedule event writes batches; the embedder, its provider key read from
/// Secrets Manager, stores an announced batch, answers a test event, and fails the invocation
/// (so Lambda retries) when Chroma is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambdas_round_trip_through_the_runtime_api() {
    use runtime_api::{Outcome, RuntimeApi};
    let mut w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    let api = RuntimeApi::start().await;
    // Chroma does not come back in this test: the embedder stops holding after 2 s.
    let config_text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[chroma]\n",
        "[chroma]\noutage_hold_secs = 2\n",
        1,
    );
    let function = |bin: &str, name: &str| {
        let mut cmd = w.lambda(bin, api.env(name), &config_text);
        cmd.env_remove(KEY_ENV).stderr(std::process::Stdio::piped());
        cmd
    };

    let mut fetcher = function(env!("CARGO_BIN_EXE_kass-fetcher"), "kass-fetcher")
        .env(KEY_ENV, "unused")
        .spawn()
        .unwrap();
    let schedule: serde_json::Value =
        serde_json::from_str(include_str!("../examples/events/schedule.json")).unwrap();
    let id = api.invoke(schedule);
    let outcome = api.outcome(&id, Duration::from_secs(120)).await;
    fetcher.kill().unwrap();
    fetcher.wait().unwrap();
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}")
    };
    let keys = w.batch_keys("slack").await;
    assert!(!keys.is_empty());
    assert_eq!(
        fetched["batches"].as_array().map(Vec::len),
        Some(keys.len() + w.batch_keys("wiki").await.len()),
        "{fetched}"
    );

    // The provider key only in Secrets Manager (moto), named by KASS_SECRETS.
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(w.moto.endpoint())
        .load()
        .await;
    let secret_arn = aws_sdk_secretsmanager::Client::new(&shared)
        .create_secret()
        .name("kass/providers")
        .secret_string(format!(r#"{{"{KEY_ENV}": "test-key-123"}}"#))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let mut embedder = function(env!("CARGO_BIN_EXE_kass-embedder"), "kass-embedder")
        .env("KASS_SECRETS", &secret_arn)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = api.invoke(s3_event(&keys[0]));
    let outcome = api.outcome(&id, Duration::from_secs(120)).await;
    let Outcome::Response(done) = &outcome else {
        embedder.kill().unwrap();
        let mut log = String::new();
        use std::io::Read;
        embedder
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        panic!("embedder failed: {outcome:?}\n{log}")
    };
    let expected = w.chunk_ids(&keys[..1]).await;
    assert_eq!(done["stored"], expected.len() as u64, "{done}");
    assert_eq!(w.chroma_count().await, expected.len() as u64);

    let test_event: serde_json::Value =
        serde_json::from_str(include_str!("../examples/events/s3-test-event.json")).unwrap();
    let id = api.invoke(test_event);
    match api.outcome(&id, Duration::from_secs(30)).await {
        Outcome::Response(r) => assert_eq!(r["skipped"]["test_event"], 1, "{r}"),
        other => panic!("{other:?}"),
    }

    // A batch that cannot be read: dead-lettered, and the invocation fails so Lambda retries
    // it and then hands it to the on-failure destination.
    let id = api.invoke(s3_event(
        "slack/chunked/year=2025/month=01/day=01/batch_gone.json",
    ));
    match api.outcome(&id, Duration::from_secs(60)).await {
        Outcome::Error(e) => assert!(e.to_string().contains("1 batch file(s) unreadable"), "{e}"),
        other => panic!("expected a failed invocation: {other:?}"),
    }
    let letters = w.store.list("_dead_letter/batch_loader/").await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");

    // Chroma down: the chunks are dead-lettered and the invocation fails.
    w.chroma.take().expect("running").stop();
    let id = api.invoke(s3_event(keys.last().unwrap()));
    let outcome = api.outcome(&id, Duration::from_secs(120)).await;
    embedder.kill().unwrap();
    let mut emf = String::new();
    use std::io::Read;
    embedder
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut emf)
        .unwrap();
    embedder.wait().unwrap();
    match outcome {
        Outcome::Error(e) => assert!(e.to_string().contains("because a service was down"), "{e}"),
        other => panic!("expected a failed invocation: {other:?}"),
    }
    // Each invocation's metrics as CloudWatch EMF lines: the stored batch's chunks and their
    // latency to searchable, for the source.
    let stored: serde_json::Value = emf
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|d| d["source"] == "slack" && d.get("kass_chroma_upserted_total").is_some())
        .unwrap_or_else(|| panic!("no EMF line of the stored batch: {emf}"));
    assert_eq!(stored["function"], "kass-embedder");
    assert_eq!(
        stored["kass_chroma_upserted_total"],
        expected.len() as f64,
        "{stored}"
    );
    let latency = stored["kass_latency_to_searchable_seconds"]
        .as_f64()
        .unwrap();
    assert!((0.0..600.0).contains(&latency), "{stored}");
}

/// The fetch half resumes from its cursors in `_state/`: a second run over unchanged data
/// writes no batch; new data in one source writes batches for that source only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_fetch_writes_only_new_data() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    let first = w.run(&["fetch"]).await;
    let slack = w.batch_keys("slack").await;
    let wiki = w.batch_keys("wiki").await;
    assert!(!slack.is_empty() && !wiki.is_empty(), "{}", stdout(&first));
    let state = w.store.list("_state/").await.unwrap();
    assert_eq!(state, ["_state/slack.json", "_state/wiki.json"]);

    let second = w.run(&["fetch"]).await;
    assert!(
        stdout(&second).contains("0 batch files"),
        "{}",
        stdout(&second)
    );
    assert_eq!(w.batch_keys("slack").await, slack);
    assert_eq!(w.batch_keys("wiki").await, wiki);

    // New data in the wiki only.
    std::fs::write(
        w.dir.join("wiki.jsonl"),
        concat!(
            r#"{"id": "wiki/deploy", "kind": "text", "text": "Deploys go out on Tuesdays after the change review."}"#,
            "\n",
            r#"{"id": "wiki/oncall", "kind": "text", "text": "The on-call rotation changes every Monday at noon."}"#,
            "\n"
        ),
    )
    .unwrap();
    let third = w.run(&["fetch"]).await;
    assert_eq!(w.batch_keys("slack").await, slack, "{}", stdout(&third));
    let new_wiki: Vec<String> = w
        .batch_keys("wiki")
        .await
        .into_iter()
        .filter(|k| !wiki.contains(k))
        .collect();
    assert!(!new_wiki.is_empty(), "{}", stdout(&third));
    let text = String::from_utf8_lossy(&w.store.get(&new_wiki[0]).await.unwrap()).into_owned();
    assert!(text.contains("on-call rotation"), "{text}");

    // --full reads everything again.
    let full = w.run(&["fetch", "--full"]).await;
    assert!(
        w.batch_keys("slack").await.len() > slack.len(),
        "{}",
        stdout(&full)
    );
}

/// `kass replay` lists the day partitions of a date range and re-embeds only those batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_re_embeds_only_the_date_range() {
    let w = World::start(FakeOptions::new(Api::OpenAi), "").await;
    w.run(&["fetch"]).await;
    let written = w.batch_keys("slack").await;
    assert!(written.len() >= 2, "{written:?}");
    // Two batches moved to known partition dates, the others removed.
    let inside = "slack/chunked/year=2025/month=10/day=03/batch_inside.json".to_string();
    let outside = "slack/chunked/year=2025/month=10/day=20/batch_outside.json".to_string();
    for (from, to) in [(&written[0], &inside), (&written[1], &outside)] {
        let body = w.store.get(from).await.unwrap();
        w.store.put(to, body).await.unwrap();
    }
    for key in &written {
        w.store.delete(key).await.unwrap();
    }
    let out = w
        .run(&[
            "replay",
            "--bucket",
            BUCKET,
            "--source",
            "slack",
            "--since",
            "2025-10-01",
            "--until",
            "2025-10-05",
        ])
        .await;
    assert!(stdout(&out).contains("1 batch files"), "{}", stdout(&out));
    let expected = w.chunk_ids(std::slice::from_ref(&inside)).await;
    assert_eq!(w.chroma_count().await, expected.len() as u64);

    // The whole month: the other batch too; the first is not embedded again.
    let calls = w.provider.log().len();
    w.run(&[
        "replay",
        "--source",
        "slack",
        "--since",
        "2025-10-01",
        "--until",
        "2025-10-31",
    ])
    .await;
    let all = w.chunk_ids(&[inside, outside.clone()]).await;
    assert_eq!(w.chroma_count().await, all.len() as u64);
    let new_only = w.chunk_ids(&[outside]).await.difference(&expected).count();
    assert!(w.provider.log().len() > calls && new_only > 0);
}

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

#[path = "../sources/tests/support/slack_web_api.rs"]
mod slack_web_api;

use std::time::Duration;

use fake_provider::{Api, FakeOptions};
use kass_pipeline::store::ObjectStore;
use serde_json::{json, Value};
use split_world::{s3_event, World, BUCKET, KEY_ENV};

/// The tests that start several workers take turns: each measures what its workers achieve
/// (a share of a provider's limit, a kill mid-batch), and three more processes competing for
/// two cores would measure the machine instead.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _alone = ALONE.lock().await;
    const LIMIT: usize = 12;
    const WORKERS: usize = 3;
    let window = Duration::from_millis(1000);
    let mut strict = FakeOptions::new(Api::OpenAi);
    strict.requests_per_window = Some(LIMIT);
    strict.window = window;
    let w = World::start(strict, "[embed]\nbatch_size = 3\n").await;
    // The account's limit, shared by three workers, counted over the test's short window.
    w.set_provider_lines(&format!(
        "requests_per_minute = {LIMIT}\ntokens_per_minute = 0\nrate_window_ms = {}\nworkers = {WORKERS}\n",
        window.as_millis()
    ));
    w.write_runbook_pages(300);
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
    let mut children = listeners;
    let drained_at = w
        .wait_for_listeners(&mut children, Duration::from_secs(120))
        .await;
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

/// Three workers whose config does not know the provider's limit (`requests_per_minute = 0`:
/// no rate at all; without the line, OpenAI's default of 100 would pace them from the start and
/// the learning would never run) against a strict 12 requests per 1 s window. Every chunk is
/// stored once and the queue ends empty; and the limit is learned: in the later half of the
/// busy time under an eighth of the requests are answered 429. Measured
/// (`benches/adaptive_pacing.rs --mode none --learning both`, docs/scaling.md): 0.03-0.04
/// learning, 0.47-0.48 with `KASS_ADAPTIVE_LEARNING=off` (Retry-After alone); this test with
/// two to four busy loops beside it (load average 5-8 on 2 cores): 0.03-0.045 learning, 0.42
/// off. The bound keeps a margin of about 3x on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_listeners_learn_a_limit_their_config_does_not_know() {
    let _alone = ALONE.lock().await;
    let window = Duration::from_millis(1000);
    let mut strict = FakeOptions::new(Api::OpenAi);
    strict.requests_per_window = Some(12);
    strict.window = window;
    strict.latency = Duration::from_millis(20);
    let w = World::start(strict, "[embed]\nbatch_size = 3\n").await;
    w.set_provider_lines(&format!(
        "requests_per_minute = 0\ntokens_per_minute = 0\nrate_window_ms = {}\nworkers = 3\n",
        window.as_millis()
    ));
    w.write_runbook_pages(900);
    w.run(&["fetch"]).await;
    let keys = w.batch_keys("wiki").await;
    let expected = w.chunk_ids(&keys).await;
    w.announce(&keys).await;
    let mut children: Vec<_> = (0..3)
        .map(|i| {
            let mut cmd = w.kass();
            cmd.args([
                "embed",
                "--listen",
                &format!("sqs://{}", split_world::QUEUE),
                "--until-idle",
                "--wait",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(w.dir.join(format!("listener-{i}.log"))).unwrap())
            .spawn()
            .unwrap()
        })
        .collect();
    let drained_at = w
        .wait_for_listeners(&mut children, Duration::from_secs(300))
        .await;
    for (i, child) in children.iter_mut().enumerate() {
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(w.dir.join(format!("listener-{i}.log"))).unwrap();
        assert!(status.success(), "listener {i} failed: {status}\n{log}");
    }
    assert_eq!(w.chroma_count().await, expected.len() as u64, "chunks lost");
    assert_eq!(w.queue_depth().await, 0);

    let log = w.provider.log();
    let first = log.iter().map(|l| l.at).min().unwrap();
    let end = drained_at.expect("the queue drained");
    let mid = first + end.duration_since(first) / 2;
    let within = |from, to| {
        let sent: Vec<_> = log.iter().filter(|l| l.at >= from && l.at < to).collect();
        let rejected = sent.iter().filter(|l| l.status == 429).count();
        (sent.len(), rejected)
    };
    let ((_, early), (late_sent, late)) = (within(first, mid), within(mid, end));
    eprintln!(
        "429s: {early} in the first half, {late} of {late_sent} requests in the later half of {:?}",
        end.duration_since(first)
    );
    assert!(
        late * 8 < late_sent,
        "the limit was not learned: {late} of the later half's {late_sent} requests answered 429 \
         (learning: 3-4 %; with KASS_ADAPTIVE_LEARNING=off: 47-48 %)"
    );
}

const SLACK_TOKEN: &str = "xoxb-3333-kass-scale-out-token";
const SLACK_TOKEN_ENV: &str = "KASS_SCALE_OUT_SLACK_TOKEN";

/// `[[sources]]` of the slack_api source at `base_url` (fast limits for a local server) and of
/// the `jsonl` source `wiki` at `wiki`.
fn changing_sources(base_url: &str, wiki: &std::path::Path) -> String {
    format!(
        "\n[[sources]]\ntype = \"slack_api\"\nname = \"slackapi\"\nbase_url = \"{base_url}\"\ntoken_env = \"{SLACK_TOKEN_ENV}\"\nmax_deletion_share = 1.0\n\n[sources.rate_limit]\nrate_scale = 1000.0\n\n[[sources]]\ntype = \"jsonl\"\nname = \"handbook\"\npath = \"{}\"\n",
        wiki.display()
    )
}

/// Unix seconds at noon (UTC) `days` days ago.
fn noon(days: u64) -> u64 {
    let day = chrono::Utc::now().date_naive() - chrono::Days::new(days);
    day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp() as u64
}

/// Five channels with a week of messages, two a day each.
fn busy_workspace() -> slack_web_api::Workspace {
    use slack_web_api::ts;
    let mut ws = slack_web_api::Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_user("U2", "bo");
    for c in 0..5 {
        let name = format!("team-{c}");
        ws.add_channel(&format!("C{c}"), &name);
        for day in 1..=7 {
            ws.post(
                &name,
                &ts(noon(day), c),
                "U1",
                &format!(
                    "channel {c} day {day}: the deploy of service {} is blocked",
                    c * 10 + day as u32
                ),
            );
            ws.post(
                &name,
                &ts(noon(day) + 60, c),
                "U2",
                &format!(
                    "channel {c} day {day}: unblocked by rolling back build {}",
                    c * 100 + day as u32
                ),
            );
        }
    }
    ws
}

/// The handbook: `pages` one-line documents, `edited` of them in their `round`-th edit.
fn handbook(pages: usize, edited: &[(usize, u32)]) -> String {
    (0..pages)
        .map(|i| {
            let text = match edited.iter().find(|(p, _)| *p == i) {
                Some((_, round)) => format!(
                    "Handbook page {i}, revision {round}: page the on-call of team {} first.",
                    i % 7
                ),
                None => format!(
                    "Handbook page {i}: restart worker {i} after the deploy of service {}.",
                    i * 7
                ),
            };
            format!(
                "{}\n",
                json!({"id": format!("handbook/page-{i}"), "kind": "text", "text": text})
            )
        })
        .collect()
}

/// A `kass embed --listen` worker presenting its own provider key (the fake provider accepts
/// any, and logs which), its stderr in `log`.
fn worker(w: &World, key: &str, log: &std::path::Path) -> std::process::Child {
    let mut cmd = w.kass();
    cmd.env(KEY_ENV, key)
        .env(SLACK_TOKEN_ENV, SLACK_TOKEN)
        .args([
            "embed",
            "--listen",
            &format!("sqs://{}", split_world::QUEUE),
            "--wait",
            "1",
            "--visibility-timeout",
            "3",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd.spawn().unwrap()
}

/// Waits until every message is deleted (done), the workers in `alive` still running.
async fn drained(w: &World, alive: &mut [(String, std::process::Child)]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.queue_depth().await > 0 {
        for (key, child) in alive.iter_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(w.dir.join(format!("{key}.log"))).unwrap();
                panic!("worker {key} stopped: {status}\n{log}");
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three workers on one queue through incremental fetches with edits and deletions (Slack
/// messages edited and deleted, a channel removed, handbook pages rewritten); one worker is
/// killed with SIGKILL in the middle of a batch (a request of its own at the provider) and
/// replaced, as ECS replaces a task. Its messages reappear after the visibility timeout and
/// the others finish them. Afterwards Chroma holds exactly the chunk ids of a from-scratch
/// fetch of the sources as they are now, and the provider embedded every text once, except
/// texts the killed worker had sent: those (and only those) are embedded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing_and_doubles_only_its_own_requests() {
    let _alone = ALONE.lock().await;
    let server = slack_web_api::SlackServer::start(
        busy_workspace(),
        slack_web_api::ServerOptions::new(SLACK_TOKEN),
    )
    .await;
    let mut slow = FakeOptions::new(Api::OpenAi);
    slow.latency = Duration::from_millis(100);
    slow.api_key = None;
    let handbook_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let handbook_path = handbook_path.keep().unwrap();
    std::fs::write(&handbook_path, handbook(120, &[])).unwrap();
    let w = World::start(
        slow,
        &format!(
            "{}\n[embed]\nbatch_size = 2\n",
            changing_sources(&server.base_url(), &handbook_path)
        ),
    )
    .await;
    w.setup_triggers("slackapi,handbook").await;
    let fetch = || async {
        let mut cmd = w.kass();
        cmd.env(SLACK_TOKEN_ENV, SLACK_TOKEN).arg("fetch");
        tokio::task::spawn_blocking(move || support::run_ok(&mut cmd))
            .await
            .unwrap();
    };
    fetch().await;
    assert!(w.queue_depth().await > 30, "too little work to share");

    let mut workers: Vec<(String, std::process::Child)> = (0..3)
        .map(|i| {
            let key = format!("worker-{i}");
            let child = worker(&w, &key, &w.dir.join(format!("{key}.log")));
            (key, child)
        })
        .collect();
    // SIGKILL worker-0 while a request of its own is at the provider, after it has done some.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answered = w
            .provider
            .log()
            .iter()
            .filter(|l| l.key.as_deref() == Some("worker-0"))
            .count();
        if answered >= 2 && w.provider.in_flight("worker-0") > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker-0 never embedded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (killed, mut child) = workers.remove(0);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_sent: std::collections::HashSet<String> = w
        .provider
        .arrivals()
        .into_iter()
        .filter(|a| a.key.as_deref() == Some(killed.as_str()))
        .flat_map(|a| a.inputs)
        .collect();
    workers.push((
        "worker-3".into(),
        worker(&w, "worker-3", &w.dir.join("worker-3.log")),
    ));
    drained(&w, &mut workers).await;

    // Edits and deletions, each fetched incrementally and drained by the workers.
    let edits: [&dyn Fn(&mut slack_web_api::Workspace); 2] = [
        &|ws| {
            use slack_web_api::ts;
            ws.edit(
                "team-0",
                &ts(noon(2), 0),
                "channel 0 day 2: the deploy is fine after all",
                &ts(noon(0), 1),
            );
            ws.edit(
                "team-3",
                &ts(noon(5) + 60, 3),
                "channel 3 day 5: rolled forward instead",
                &ts(noon(0), 2),
            );
            ws.delete("team-1", &ts(noon(3), 1));
            ws.delete("team-4", &ts(noon(6) + 60, 4));
            ws.post(
                "team-2",
                &ts(noon(1) + 120, 2),
                "U1",
                "channel 2 day 1: one more thing about the release",
            );
        },
        &|ws| {
            use slack_web_api::ts;
            ws.remove_channel("team-2");
            ws.delete("team-0", &ts(noon(4) + 60, 0));
            ws.edit(
                "team-1",
                &ts(noon(7), 1),
                "channel 1 day 7: archived runbook link",
                &ts(noon(0), 3),
            );
        },
    ];
    for (round, edit) in edits.iter().enumerate() {
        server.with_workspace(|ws| edit(ws));
        let round = round as u32 + 1;
        let edited: Vec<(usize, u32)> = (0..round as usize * 4)
            .map(|p| (p * 13 % 120, round))
            .collect();
        std::fs::write(&handbook_path, handbook(120, &edited)).unwrap();
        fetch().await;
        drained(&w, &mut workers).await;
    }
    for (_, mut child) in workers {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Chroma equals a from-scratch fetch of the sources as they are now.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("fresh.toml");
    std::fs::write(
        &fresh,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n{}",
            fresh_dir.path().join("store").display(),
            changing_sources(&server.base_url(), &handbook_path)
        ),
    )
    .unwrap();
    let mut cmd = support::kass();
    cmd.env(SLACK_TOKEN_ENV, SLACK_TOKEN)
        .args(["fetch", "--config"])
        .arg(&fresh);
    tokio::task::spawn_blocking(move || support::run_ok(&mut cmd))
        .await
        .unwrap();
    let expected: std::collections::BTreeSet<String> =
        support::batch_chunk_ids(&fresh_dir.path().join("store"))
            .into_iter()
            .collect();
    let url = w.chroma.as_ref().unwrap().url();
    let stored: std::collections::BTreeSet<String> =
        support::chroma_get(&url, "split", json!({"include": []}))
            .await
            .unwrap()["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(
        stored.len(),
        expected.len(),
        "Chroma holds {} chunks, a fresh fetch makes {}",
        stored.len(),
        expected.len()
    );
    assert_eq!(stored, expected, "Chroma differs from a fresh fetch");
    assert_eq!(w.chroma_count().await, expected.len() as u64);

    // Each text embedded once, apart from texts the killed worker had sent: the others
    // embedded each text at most once, and every text embedded twice was one of the killed
    // worker's. Its requests in flight at the kill were embedded again by another worker.
    let mut by_others: std::collections::HashMap<&str, usize> = Default::default();
    let mut all: std::collections::HashMap<&str, usize> = Default::default();
    let log = w.provider.log();
    for entry in log.iter().filter(|l| l.status == 200) {
        for text in &entry.inputs {
            *all.entry(text).or_default() += 1;
            if entry.key.as_deref() != Some(killed.as_str()) {
                *by_others.entry(text).or_default() += 1;
            }
        }
    }
    let twice_by_others: Vec<_> = by_others.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice_by_others.is_empty(),
        "the surviving workers embedded texts twice: {twice_by_others:?}"
    );
    let doubled: Vec<&str> = all
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| *t)
        .collect();
    let not_killed: Vec<_> = doubled
        .iter()
        .filter(|t| !killed_sent.contains(**t))
        .collect();
    assert!(
        not_killed.is_empty(),
        "embedded twice, never sent by the killed worker: {not_killed:?}"
    );
    // What the killed worker sent and never had answered (its requests cut by the kill) was
    // embedded by another worker: its messages came back.
    let answered_to_killed: std::collections::HashSet<&str> = log
        .iter()
        .filter(|l| l.status == 200 && l.key.as_deref() == Some(killed.as_str()))
        .flat_map(|l| l.inputs.iter().map(String::as_str))
        .collect();
    let cut: Vec<&String> = killed_sent
        .iter()
        .filter(|t| !answered_to_killed.contains(t.as_str()))
        .collect();
    assert!(
        !cut.is_empty(),
        "the kill cut no request of the killed worker"
    );
    let lost: Vec<_> = cut
        .iter()
        .filter(|t| !by_others.contains_key(t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "never embedded again after the kill: {lost:?}"
    );
    eprintln!(
        "killed worker sent {} texts, {} cut by the kill; {} embedded twice; {} requests in all",
        killed_sent.len(),
        cut.len(),
        doubled.len(),
        log.len()
    );
}

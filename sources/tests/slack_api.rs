//! The `slack_api` source against a local server speaking Slack's Web API
//! (`support/slack_web_api.rs`): backfill through short pages, the window read again, late
//! replies, edits and deletions, channels that go, errors that skip a channel or stop the
//! source, a 429 storm, the non-Marketplace tier, an interrupted backfill resumed, and the
//! deletion guard (per channel and for the source; what it withholds read again before it is
//! ever deleted), paging that stops short (a page announcing more without a cursor, a cursor
//! handed out again) and a 429 storm on one method. Each run goes through the source as the topology runs it, with its cursor
//! in a local store and its tombstones in an outbox, as `kass fetch` gives them.

mod common;
#[path = "support/slack_web_api.rs"]
mod slack_web_api;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::store::LocalStore;
use kass_pipeline::RawRecord;
use kass_sources::cursor::Cursor;
use kass_sources::slack_api::{RateTier, SlackApiConfig};
use kass_sources::{BuildSource, SourceDeps};
use slack_web_api::{ts, BrokenCursor, MethodStorm, ServerOptions, SlackServer, Workspace};

const TOKEN: &str = "xoxb-123456789012-kass-slack-api-test-token";

/// One env var per config: tests run in parallel threads of one process.
fn token_env() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let var = format!(
        "KASS_TEST_SLACK_TOKEN_{}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    std::env::set_var(&var, TOKEN);
    var
}

/// Unix seconds `secs` seconds before noon (UTC) `days` days ago: messages of one test day
/// never straddle midnight.
fn ago(days: i64, secs: i64) -> u64 {
    let today = chrono::Utc::now().date_naive();
    let day = today - chrono::Days::new(days as u64);
    let noon = day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp();
    (noon - secs) as u64
}

fn at(days: i64, secs: i64) -> String {
    ts(ago(days, secs), 0)
}

/// What one run sent: documents by id (their messages' texts), tombstones, dead letters.
#[derive(Debug, Default)]
struct Fetched {
    documents: BTreeMap<String, Vec<String>>,
    gone: BTreeSet<String>,
    dead_letters: usize,
}

/// A source's life over several runs: its config, and its cursor's store.
struct Synced {
    config: SlackApiConfig,
    _dir: tempfile::TempDir,
    store: LocalStore,
}

impl Synced {
    fn new(server: &SlackServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let mut config = SlackApiConfig::new(server.base_url());
        config.token_env = token_env();
        config.max_deletion_share = 1.0;
        config.retry.initial_backoff_ms = 20;
        // The tier's minute is 60 ms here: tests that check pacing set their own scale.
        config.rate_limit.rate_scale = 1_000.0;
        Self {
            config,
            _dir: dir,
            store,
        }
    }

    async fn run(&self) -> Fetched {
        self.run_with(false, None).await.expect("the source failed")
    }

    /// One run; `stop_after` requests shutdown after that many documents.
    async fn run_with(
        &self,
        allow_deletions: bool,
        stop_after: Option<usize>,
    ) -> Result<Fetched, kass_pipeline::FatalError> {
        let cursor = Arc::new(
            Cursor::load(&self.store, &self.config.name, "s")
                .await
                .unwrap(),
        );
        let outbox = TombstoneOutbox::default();
        let source = self.config.clone().build_with(SourceDeps {
            cursor: Some(cursor.clone()),
            tombstones: Some(outbox.clone()),
            allow_deletions,
        })?;
        let run = common::try_run_source(source, "slack_api", stop_after).await?;
        // As the fetch does: the state is saved once everything sent is written.
        cursor.save(&self.store, &self.config.name).await.unwrap();
        let mut fetched = Fetched {
            dead_letters: run.dead_letters.len(),
            ..Fetched::default()
        };
        for record in run.records {
            let RawRecord::Chat(chat) = record else {
                panic!("slack_api sends chats")
            };
            let texts = chat.messages.iter().map(|m| m.text.clone()).collect();
            let repeated = fetched.documents.insert(chat.document_id.clone(), texts);
            assert!(repeated.is_none(), "{} sent twice", chat.document_id);
        }
        for (source, tombstones) in outbox.take() {
            assert_eq!(source, self.config.name);
            fetched
                .gone
                .extend(tombstones.into_iter().map(|t| t.document_id));
        }
        Ok(fetched)
    }
}

fn day_id(channel: &str, ts: &str) -> String {
    let secs: i64 = ts.split('.').next().unwrap().parse().unwrap();
    let day = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .date_naive();
    format!("{channel}/{day}")
}

fn thread_id(channel: &str, ts: &str) -> String {
    format!("{channel}/thread/{ts}")
}

/// A workspace of two channels with 40 days of history (older than the 14-day window) and
/// threads, one with a broadcast reply.
fn history() -> Workspace {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_user("U2", "bo");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "general");
    for day in 0..40 {
        for n in 0..3 {
            ws.post(
                "dev-help",
                &at(20 + day, 100 * n),
                "U1",
                &format!("day {day} note {n}"),
            );
        }
        if day % 5 == 0 {
            let parent = at(20 + day, 1_000);
            ws.post("general", &parent, "U2", &format!("question {day}"));
            ws.reply("general", &parent, &at(20 + day, 900), "U1", "answer");
            ws.broadcast("general", &parent, &at(20 + day, 800), "U2", "thanks all");
        }
    }
    ws
}

#[tokio::test]
async fn a_backfill_through_short_pages_emits_every_day_and_thread_once() {
    let server = SlackServer::start(history(), {
        let mut o = ServerOptions::new(TOKEN);
        o.short_pages = true;
        o.page_cap = Some(7);
        o
    })
    .await;
    let synced = Synced::new(&server);
    let first = synced.run().await;

    let (dev, general) =
        server.with_workspace(|ws| (ws.channel("C1").clone(), ws.channel("C2").clone()));
    let mut expected: BTreeSet<String> = dev.messages.iter().map(|m| day_id("C1", &m.ts)).collect();
    for m in general.messages.iter().filter(|m| !m.is_reply()) {
        expected.insert(thread_id("C2", &m.ts));
    }
    let got: BTreeSet<String> = first.documents.keys().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!(first.dead_letters, 0);
    // Every message in exactly one document; the broadcast reply only in its thread.
    let texts: usize = first.documents.values().map(Vec::len).sum();
    assert_eq!(texts, dev.messages.len() + general.messages.len());
    let thread = &first.documents[&thread_id("C2", &at(20, 1_000))];
    assert_eq!(
        thread,
        &["question 0", "answer", "thanks all"],
        "parent, then replies in time order"
    );
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.method == "conversations.history" && l.messages < 7),
        "the server sent short pages"
    );

    // Nothing changed, and all of it is older than the window: nothing is read again.
    server.clear_log();
    let second = synced.run().await;
    assert!(second.documents.is_empty(), "{:?}", second.documents.keys());
    assert!(second.gone.is_empty());
    assert_eq!(server.count("conversations.replies"), 0);
}

#[tokio::test]
async fn late_replies_edits_and_deletions_reach_the_documents() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "random");
    // Inside the 14-day window.
    ws.post("dev-help", &at(3, 0), "U1", "build is red");
    ws.post("dev-help", &at(3, -60), "U1", "fixed it");
    ws.post("dev-help", &at(5, 0), "U1", "alone on its day");
    ws.post("dev-help", &at(6, 0), "U1", "a thread to delete");
    ws.reply("dev-help", &at(6, 0), &at(6, -10), "U1", "reply to go");
    // A thread started before the window, still active inside it.
    ws.post("dev-help", &at(20, 0), "U1", "old question");
    ws.reply("dev-help", &at(20, 0), &at(10, 0), "U1", "recent answer");
    ws.post("random", &at(2, 0), "U1", "lunch?");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let synced = Synced::new(&server);
    let first = synced.run().await;
    assert_eq!(first.documents.len(), 5, "{:?}", first.documents.keys());

    server.with_workspace(|ws| {
        ws.reply("dev-help", &at(20, 0), &at(1, 0), "U1", "late reply");
        ws.edit("dev-help", &at(3, 0), "build is green", &at(0, 10));
        ws.delete("dev-help", &at(5, 0));
        ws.delete("dev-help", &at(6, 0));
        ws.remove_channel("random");
    });
    let second = synced.run().await;
    let old_thread = thread_id("C1", &at(20, 0));
    assert_eq!(
        second.documents[&old_thread],
        ["old question", "recent answer", "late reply"],
        "a reply to a thread older than the window is caught"
    );
    assert_eq!(
        second.documents[&day_id("C1", &at(3, 0))],
        ["build is green", "fixed it"]
    );
    let expected_gone: BTreeSet<String> = [
        day_id("C1", &at(5, 0)),
        thread_id("C1", &at(6, 0)),
        day_id("C2", &at(2, 0)),
    ]
    .into();
    assert_eq!(second.gone, expected_gone);

    // Nothing changed since: the window is read again, nothing is gone.
    let third = synced.run().await;
    assert!(third.gone.is_empty(), "{:?}", third.gone);
    assert!(third.documents.contains_key(&old_thread));
}

#[tokio::test]
async fn a_channel_the_bot_is_not_in_is_skipped_and_a_refused_token_stops_the_source() {
    let mut ws = history();
    ws.channel_mut("general").is_member = false;
    let server = SlackServer::start(ws, {
        let mut o = ServerOptions::new(TOKEN);
        o.not_in_channel = vec!["C2".to_string()];
        o
    })
    .await;
    let mut synced = Synced::new(&server);
    synced.config.channels = vec!["dev-*".into(), "general".into()];
    let fetched = synced.run().await;
    assert!(fetched.documents.keys().all(|d| d.starts_with("C1/")));
    assert!(!fetched.documents.is_empty());
    assert!(fetched.gone.is_empty());
    assert!(server
        .log()
        .iter()
        .any(|l| l.error.as_deref() == Some("not_in_channel")));

    std::env::set_var(&synced.config.token_env, "xoxb-revoked-0000-kass-test");
    let error = synced
        .run_with(false, None)
        .await
        .expect_err("invalid_auth stops the source");
    let message = error.to_string();
    assert!(message.contains("source slack"), "{message}");
    assert!(message.contains("invalid_auth"), "{message}");
    assert!(
        !message.contains("xoxb-"),
        "the token never shows: {message}"
    );
    assert!(!format!("{error:?}").contains("xoxb-"));
}

#[tokio::test]
async fn a_429_storm_is_waited_out_with_nothing_lost() {
    let server = SlackServer::start(history(), {
        let mut o = ServerOptions::new(TOKEN);
        o.fail_429_first = 4;
        o
    })
    .await;
    let reference = Synced::new(&server);
    let started = std::time::Instant::now();
    let stormy = reference.run().await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "Retry-After: 1 honoured four times"
    );
    assert_eq!(server.refused_429(), 4);
    server.set_options(ServerOptions::new(TOKEN));
    let calm = Synced::new(&server).run().await;
    assert_eq!(stormy.documents, calm.documents);
}

#[tokio::test]
async fn the_non_marketplace_tier_keeps_to_one_request_per_minute_and_fifteen_per_page() {
    // The tier's minute is a second here: the server counts 1 request per second per method
    // and serves at most 15 messages a page; the source runs at rate_scale = 60.
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for n in 0..40 {
        ws.post("dev-help", &at(30, n * 60), "U1", &format!("note {n}"));
    }
    let second = Duration::from_secs(1);
    let server = SlackServer::start(ws, {
        let mut o = ServerOptions::new(TOKEN)
            .limit("conversations.history", 1, second)
            .limit("conversations.replies", 1, second);
        o.page_cap = Some(15);
        o
    })
    .await;
    let mut synced = Synced::new(&server);
    synced.config.rate_tier = RateTier::NonMarketplace;
    synced.config.rate_limit.rate_scale = 60.0;
    let fetched = synced.run().await;
    let texts: usize = fetched.documents.values().map(Vec::len).sum();
    assert_eq!(texts, 40);
    assert_eq!(server.refused_429(), 0, "the limiter kept to the tier");
    let pages: Vec<usize> = server
        .log()
        .iter()
        .filter(|l| l.method == "conversations.history")
        .map(|l| l.messages)
        .collect();
    assert!(pages.iter().all(|&n| n <= 15), "{pages:?}");
    assert!(
        pages.iter().filter(|&&n| n == 15).count() >= 2,
        "full pages: {pages:?}"
    );
    let asked: Vec<String> = server
        .log()
        .iter()
        .filter(|l| l.method == "conversations.history")
        .filter_map(|l| l.query.get("limit").cloned())
        .collect();
    assert!(asked.iter().all(|l| l == "15"), "{asked:?}");
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_at_its_day_with_nothing_lost_or_sent_twice() {
    let server = SlackServer::start(history(), {
        let mut o = ServerOptions::new(TOKEN);
        o.page_cap = Some(5);
        o
    })
    .await;
    let full = Synced::new(&server).run().await;

    let synced = Synced::new(&server);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 40, "the backfill makes progress run after run");
        // Ctrl-C after 7 documents, as a Lambda deadline or an operator would.
        let fetched = synced.run_with(false, Some(7)).await.unwrap();
        assert!(fetched.gone.is_empty());
        let done = fetched.documents.is_empty();
        for (id, texts) in fetched.documents {
            assert!(
                seen.insert(id.clone(), texts).is_none(),
                "{id} sent by two runs"
            );
        }
        if done {
            break;
        }
    }
    assert!(runs > 3, "the backfill took several runs ({runs})");
    assert_eq!(seen, full.documents);
}

#[tokio::test]
async fn a_mass_deletion_is_withheld_until_allowed() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for day in 1..=10 {
        ws.post("dev-help", &at(day, 0), "U1", &format!("day {day}"));
    }
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut synced = Synced::new(&server);
    synced.config.max_deletion_share = 0.2;
    assert_eq!(synced.run().await.documents.len(), 10);

    server.with_workspace(|ws| {
        for day in 1..=4 {
            ws.delete("dev-help", &at(day, 0));
        }
    });
    let withheld = synced.run().await;
    assert!(withheld.gone.is_empty(), "4 of 10 is more than 20%");
    // Still withheld on the next run: the documents stay known.
    assert!(synced.run().await.gone.is_empty());
    let allowed = synced.run_with(true, None).await.unwrap();
    assert_eq!(allowed.gone.len(), 4);
    // Done: a later run finds nothing more to delete.
    assert!(synced.run().await.gone.is_empty());

    server.with_workspace(|ws| ws.delete("dev-help", &at(5, 0)));
    assert_eq!(synced.run().await.gone.len(), 1, "1 of 6 is within 20%");
}

#[tokio::test]
async fn a_withheld_deletion_of_a_thread_no_longer_watched_is_sent_once_allowed() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for day in 1..=10 {
        ws.post("dev-help", &at(day, 0), "U1", &format!("day {day}"));
    }
    // Older than the window, watched for its recent reply.
    ws.post("dev-help", &at(20, 0), "U1", "old question");
    ws.reply("dev-help", &at(20, 0), &at(5, 0), "U1", "recent answer");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut synced = Synced::new(&server);
    synced.config.max_deletion_share = 0.05;
    assert_eq!(synced.run().await.documents.len(), 11);

    server.with_workspace(|ws| ws.delete("dev-help", &at(20, 0)));
    assert!(synced.run().await.gone.is_empty(), "1 of 11 is over 5%");
    // The thread is no longer watched (it was not sent), yet it is not forgotten.
    assert!(synced.run().await.gone.is_empty());
    let allowed = synced.run_with(true, None).await.unwrap();
    assert_eq!(allowed.gone, BTreeSet::from([thread_id("C1", &at(20, 0))]));
    assert!(synced.run().await.gone.is_empty(), "sent once");
}

#[tokio::test]
async fn a_reply_also_sent_to_the_channel_wakes_a_dormant_thread() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    // Quiet for longer than the lookback: not watched.
    ws.post("dev-help", &at(40, 0), "U1", "old question");
    ws.reply("dev-help", &at(40, 0), &at(30, 0), "U1", "old answer");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let synced = Synced::new(&server);
    assert_eq!(synced.run().await.documents.len(), 1);

    server.with_workspace(|ws| ws.broadcast("dev-help", &at(40, 0), &at(1, 0), "U1", "update!"));
    let second = synced.run().await;
    assert_eq!(
        second.documents[&thread_id("C1", &at(40, 0))],
        ["old question", "old answer", "update!"]
    );
}

/// Counters as `(name, labels, value)`, from the thread that installs it: tests that read them
/// run on one thread (`flavor = "current_thread"`), the source's tasks included.
#[derive(Clone, Default)]
struct Counters(Arc<std::sync::Mutex<Vec<Increment>>>);

/// A counter's name, its labels and what it was increased by.
type Increment = (String, Vec<(String, String)>, u64);

struct Counted(Counters, String, Vec<(String, String)>);

impl metrics::CounterFn for Counted {
    fn increment(&self, by: u64) {
        (self.0)
            .0
            .lock()
            .unwrap()
            .push((self.1.clone(), self.2.clone(), by));
    }
    fn absolute(&self, _: u64) {}
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        metrics::Counter::from_arc(Arc::new(Counted(
            self.clone(),
            key.name().to_string(),
            labels,
        )))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counters {
    /// The reasons `kass_source_scopes_skipped_total` was counted under.
    fn skipped(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _, _)| name == "kass_source_scopes_skipped_total")
            .filter_map(|(_, labels, _)| {
                labels
                    .iter()
                    .find(|(k, _)| k == "reason")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

/// Two channels with a message on each of the last 10 days: `dev-help` (C1) and `general`
/// (C2), read through pages of 3.
fn ten_days_each() -> Workspace {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "general");
    for day in 1..=10 {
        ws.post("dev-help", &at(day, 0), "U1", &format!("dev {day}"));
        ws.post("general", &at(day, 0), "U1", &format!("general {day}"));
    }
    ws
}

fn paged_by(page: usize) -> ServerOptions {
    let mut o = ServerOptions::new(TOKEN);
    o.page_cap = Some(page);
    o
}

/// A run that must end on its own: a read that loops never does.
async fn run_bounded(synced: &Synced, allow_deletions: bool) -> Fetched {
    tokio::time::timeout(
        Duration::from_secs(30),
        synced.run_with(allow_deletions, None),
    )
    .await
    .expect("the run ends: no read loops forever")
    .expect("the source failed")
}

#[tokio::test(flavor = "current_thread")]
async fn a_page_announcing_more_without_a_cursor_skips_the_channel_and_deletes_nothing() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let server = SlackServer::start(ten_days_each(), paged_by(3)).await;
    let synced = Synced::new(&server);
    assert_eq!(run_bounded(&synced, false).await.documents.len(), 20);

    server.set_options(paged_by(3).broken(
        "conversations.history",
        Some("C1"),
        BrokenCursor::NoCursor,
    ));
    let broken = run_bounded(&synced, false).await;
    assert!(
        broken.gone.is_empty(),
        "an incomplete read deletes nothing: {:?}",
        broken.gone
    );
    assert!(broken.documents.keys().any(|d| d.starts_with("C2/")));
    assert!(
        counters
            .skipped()
            .contains(&"incomplete_listing".to_string()),
        "{:?}",
        counters.skipped()
    );
    // Even allowed to delete, an incomplete read finds nothing gone.
    assert!(run_bounded(&synced, true).await.gone.is_empty());

    // Paging whole again: the channel is read, nothing of it was lost.
    server.set_options(paged_by(3));
    let healed = run_bounded(&synced, false).await;
    assert!(healed.gone.is_empty());
    assert_eq!(healed.documents.len(), 20);
}

#[tokio::test(flavor = "current_thread")]
async fn a_cursor_handed_out_again_stops_the_channel_read_with_a_counted_error() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let server = SlackServer::start(ten_days_each(), paged_by(3)).await;
    let synced = Synced::new(&server);
    assert_eq!(run_bounded(&synced, false).await.documents.len(), 20);

    server.set_options(paged_by(3).broken(
        "conversations.history",
        Some("C1"),
        BrokenCursor::Repeated,
    ));
    server.clear_log();
    let looped = run_bounded(&synced, true).await;
    assert!(looped.gone.is_empty(), "{:?}", looped.gone);
    assert_eq!(
        looped
            .documents
            .keys()
            .filter(|d| d.starts_with("C2/"))
            .count(),
        10,
        "the other channel is read whole"
    );
    let c1_pages = server
        .log()
        .iter()
        .filter(|l| l.method == "conversations.history")
        .filter(|l| l.query.get("channel").map(String::as_str) == Some("C1"))
        .count();
    assert_eq!(
        c1_pages, 2,
        "the loop is seen at the first cursor handed out again"
    );
    assert!(
        counters.skipped().contains(&"repeated_cursor".to_string()),
        "{:?}",
        counters.skipped()
    );
}

#[tokio::test]
async fn an_incomplete_conversation_listing_reads_and_deletes_nothing() {
    let mut ws = ten_days_each();
    // Three pages of conversations (200 asked, short pages of 100).
    for n in 0..250 {
        ws.add_channel(&format!("C9{n:03}"), &format!("quiet-{n}"))
            .is_member = false;
    }
    let server = SlackServer::start(ws, {
        let mut o = paged_by(3);
        o.short_pages = true;
        o
    })
    .await;
    let synced = Synced::new(&server);
    assert_eq!(run_bounded(&synced, false).await.documents.len(), 20);

    server.set_options({
        let mut o = paged_by(3).broken("conversations.list", None, BrokenCursor::Repeated);
        o.short_pages = true;
        o
    });
    server.clear_log();
    let fetched = run_bounded(&synced, true).await;
    assert!(fetched.gone.is_empty(), "{:?}", fetched.gone);
    assert!(fetched.documents.is_empty());
    assert!(
        server.count("conversations.list") <= 3,
        "{}",
        server.count("conversations.list")
    );
    assert_eq!(server.count("conversations.history"), 0);
}

#[tokio::test]
async fn a_listing_without_channels_withholds_and_the_next_read_keeps_what_is_still_there() {
    // Everything but one day is older than the window.
    let mut ws = history();
    ws.post("dev-help", &at(2, 0), "U1", "recent");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut synced = Synced::new(&server);
    synced.config.max_deletion_share = 0.2;
    let first = run_bounded(&synced, false).await;
    let held = first.documents.len();
    assert!(held > 40, "{held}");

    // The listing comes back empty, the channels still there.
    server.set_options({
        let mut o = ServerOptions::new(TOKEN);
        o.empty_listing = true;
        o
    });
    let empty = run_bounded(&synced, false).await;
    assert!(
        empty.gone.is_empty(),
        "every channel's documents are withheld"
    );

    // Listed again; meanwhile one old day was really deleted. Following the guard's advice
    // deletes only what this run's read confirms gone.
    let old_day = at(30, 0);
    server.with_workspace(|ws| {
        for n in 0..3 {
            ws.delete("dev-help", &at(30, 100 * n));
        }
    });
    server.set_options(ServerOptions::new(TOKEN));
    let allowed = run_bounded(&synced, true).await;
    assert_eq!(allowed.gone, BTreeSet::from([day_id("C1", &old_day)]));
    assert_eq!(
        allowed.documents.len(),
        held - 1,
        "the withheld documents were read again"
    );
    // Settled: nothing withheld any more, nothing read again beyond the window.
    let settled = run_bounded(&synced, false).await;
    assert!(settled.gone.is_empty());
    assert!(
        settled.documents.len() < 5,
        "{:?}",
        settled.documents.keys()
    );
}

#[tokio::test]
async fn a_withheld_deletion_of_a_document_back_in_the_source_is_never_sent() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for day in 1..=10 {
        ws.post("dev-help", &at(day, 0), "U1", &format!("day {day}"));
    }
    // A thread older than the window, not watched.
    ws.post("dev-help", &at(40, 0), "U1", "old question");
    ws.reply("dev-help", &at(40, 0), &at(39, 0), "U1", "old answer");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut synced = Synced::new(&server);
    synced.config.max_deletion_share = 0.2;
    assert_eq!(run_bounded(&synced, false).await.documents.len(), 11);

    // The channel is excluded by mistake: all of it would go; withheld.
    synced.config.exclude_channels = vec!["dev-*".into()];
    assert!(run_bounded(&synced, false).await.gone.is_empty());
    // The mistake undone, and run as the guard advised: nothing of it is deleted, the old
    // thread included (read again, found).
    synced.config.exclude_channels.clear();
    let allowed = run_bounded(&synced, true).await;
    assert!(allowed.gone.is_empty(), "{:?}", allowed.gone);
    assert!(allowed.documents.contains_key(&thread_id("C1", &at(40, 0))));
}

#[tokio::test]
async fn one_channel_losing_a_large_share_is_withheld_while_the_source_is_under_it() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "general");
    for day in 1..=10 {
        ws.post("dev-help", &at(day, 0), "U1", &format!("dev {day}"));
    }
    for day in 1..=40 {
        ws.post("general", &at(day, 0), "U1", &format!("general {day}"));
    }
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut synced = Synced::new(&server);
    synced.config.max_deletion_share = 0.2;
    synced.config.thread_lookback_days = 60;
    assert_eq!(run_bounded(&synced, false).await.documents.len(), 50);

    // 4 of dev-help's 10 (40%), 1 of general's 40: 5 of 50 (10%) for the source.
    server.with_workspace(|ws| {
        for day in 1..=4 {
            ws.delete("dev-help", &at(day, 0));
        }
        ws.delete("general", &at(7, 0));
    });
    let guarded = run_bounded(&synced, false).await;
    assert_eq!(guarded.gone, BTreeSet::from([day_id("C2", &at(7, 0))]));
    let allowed = run_bounded(&synced, true).await;
    let dev_days: BTreeSet<String> = (1..=4).map(|d| day_id("C1", &at(d, 0))).collect();
    assert_eq!(allowed.gone, dev_days);
    assert!(run_bounded(&synced, false).await.gone.is_empty());
}

#[tokio::test]
async fn a_429_storm_on_one_method_lets_one_request_through_per_retry_after() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for n in 0..12 {
        let parent = at(1 + n / 4, 1_000 * n);
        ws.post("dev-help", &parent, "U1", &format!("question {n}"));
        ws.reply(
            "dev-help",
            &parent,
            &at(1 + n / 4, 1_000 * n - 10),
            "U1",
            "answer",
        );
    }
    let storm = Duration::from_secs(3);
    let server = SlackServer::start(ws, {
        let mut o = ServerOptions::new(TOKEN);
        o.method_storm = Some(MethodStorm {
            method: "conversations.replies".to_string(),
            period: storm,
            retry_after_secs: 1,
        });
        o
    })
    .await;
    let synced = Synced::new(&server);
    let fetched = run_bounded(&synced, false).await;
    assert_eq!(
        fetched.documents.len(),
        12,
        "every thread read once the storm passed"
    );

    let log: Vec<_> = server
        .log()
        .into_iter()
        .filter(|l| l.method == "conversations.replies")
        .collect();
    let first_429 = log.iter().find(|l| l.status == 429).expect("a storm").at;
    // Requests sent before the first 429 was answered (the reads in flight) arrive at once;
    // every later one waits for the Retry-After of the one before it, until one is answered.
    let later: Vec<_> = log
        .iter()
        .filter(|l| l.at.duration_since(first_429) > Duration::from_millis(200))
        .collect();
    let until_answered = later
        .iter()
        .position(|l| l.status != 429)
        .map_or(later.len(), |i| i + 1);
    let gaps: Vec<Duration> = later[..until_answered]
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    assert!(
        until_answered >= 2,
        "the storm outlasted a Retry-After: {later:?}"
    );
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(950)),
        "one request per Retry-After during the storm: {gaps:?}"
    );
    let in_storm = log
        .iter()
        .filter(|l| l.at.duration_since(first_429) < storm)
        .count();
    assert!(
        in_storm <= 4 + 3 + 1,
        "{in_storm} requests in a 3 s storm with Retry-After: 1"
    );
}

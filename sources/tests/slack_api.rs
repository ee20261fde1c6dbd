//! The `slack_api` source against a local server speaking Slack's Web API
//! (`support/slack_web_api.rs`): backfill through short pages, the window read again, late
//! replies, edits and deletions, channels that go, errors that skip a channel or stop the
//! source, a 429 storm, the non-Marketplace tier, an interrupted backfill resumed, and the
//! deletion guard. Each run goes through the source as the topology runs it, with its cursor
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
use slack_web_api::{ts, ServerOptions, SlackServer, Workspace};

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

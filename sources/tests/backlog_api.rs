//! The `backlog` source against the local Backlog API v2 server (`support/backlog_api.rs`):
//! incremental runs equal a fresh run after generated sequences of changes, listings and
//! comments are paged to their end, deletions come from the activity feed, a run stopped
//! mid-project resumes with nothing lost and nothing sent twice, the guard withholds a mass
//! deletion, a refused key stops the source naming its variable, a forbidden project is
//! skipped, the rate-limit window is kept without a 429, a 429 is waited out until its reset
//! with no request in between, and the key shows in no output.

#[path = "support/backlog_api.rs"]
mod backlog_api;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backlog_api::{BacklogServer, Space};
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::store::LocalStore;
use kass_pipeline::RawRecord;
use kass_sources::backlog::BacklogConfig;
use kass_sources::cursor::Cursor;
use kass_sources::{BuildSource, SourceDeps};
use proptest::prelude::*;

/// Seven characters: below the global redactor's minimum, so only the client's own masking
/// of the query-string key can keep it out of the output.
const KEY: &str = "bK3y9Zq";
const APP: &str = "APP";
const OPS: &str = "OPS";

fn key_env(value: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let var = format!(
        "KASS_TEST_BACKLOG_KEY_{}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    std::env::set_var(&var, value);
    var
}

fn config(server: &BacklogServer, projects: &[&str]) -> BacklogConfig {
    let text = format!(
        "name = \"backlog\"\nbase_url = \"{}\"\napi_key_env = \"{}\"\nprojects = {:?}\nmax_deletion_share = 1.0\n[rate_limit]\nrate_scale = 1000.0\n[retry]\ninitial_backoff_ms = 20\n",
        server.base_url(),
        key_env(KEY),
        projects
    );
    toml::from_str(&text).unwrap()
}

/// What one run sent: each document as JSON, and the documents it tombstoned.
#[derive(Debug, Default)]
struct Fetched {
    documents: BTreeMap<String, String>,
    gone: BTreeSet<String>,
}

/// A source's cursor in a store of its own, kept across runs.
struct Synced {
    config: BacklogConfig,
    _dir: tempfile::TempDir,
    store: LocalStore,
}

impl Synced {
    fn new(config: BacklogConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        Self {
            config,
            _dir: dir,
            store,
        }
    }

    async fn run(&self) -> Fetched {
        self.run_stopping(false, None)
            .await
            .expect("the source failed")
    }

    async fn run_stopping(
        &self,
        allow_deletions: bool,
        stop_after: Option<usize>,
    ) -> Result<Fetched, kass_pipeline::FatalError> {
        let cursor = Arc::new(Cursor::load(&self.store, "backlog", "s").await.unwrap());
        let outbox = TombstoneOutbox::default();
        let source = self.config.clone().build_with(SourceDeps {
            cursor: Some(cursor.clone()),
            tombstones: Some(outbox.clone()),
            allow_deletions,
        })?;
        let run = common::try_run_source(source, "backlog", stop_after).await?;
        cursor.save(&self.store, "backlog").await.unwrap();
        let mut fetched = Fetched::default();
        for record in run.records {
            let RawRecord::Document(mut doc) = record else {
                panic!("backlog sends documents")
            };
            // The version says when it was sent, not what it is.
            doc.metadata.remove("document_version");
            fetched
                .documents
                .insert(doc.id.clone(), serde_json::to_string(&doc).unwrap());
        }
        for tombstones in outbox.take().into_values() {
            fetched
                .gone
                .extend(tombstones.into_iter().map(|t| t.document_id));
        }
        Ok(fetched)
    }
}

fn space() -> Space {
    let mut b = Space::default();
    b.add_project(APP, "markdown");
    b.add_project(OPS, "backlog");
    let one = b.open(APP, "Build is red", "The nightly build fails on arm64.");
    b.comment(APP, one, "bo", "Looks like the linker.");
    b.comment(APP, one, "bo", "");
    b.open(OPS, "Rotate certificates", "* Steps\n+ renew\n+ deploy");
    b.write_wiki(APP, "Home", "# Welcome");
    b.write_wiki(OPS, "Runbook", "* Paging\n''always'' answer");
    b.write_document(APP, "0192ab", "Design", "The design of the app.");
    b
}

#[derive(Debug, Clone)]
enum Change {
    Open { ops: bool },
    Comment { ops: bool, pick: usize },
    LogOnly { ops: bool, pick: usize },
    EditComment { ops: bool, pick: usize },
    DeleteComment { ops: bool, pick: usize },
    Close { ops: bool, pick: usize },
    Delete { ops: bool, pick: usize },
    WriteWiki { ops: bool, pick: usize },
    DeleteWiki { ops: bool, pick: usize },
    WriteDocument { pick: usize },
    DeleteDocument { pick: usize },
    DropOps,
}

fn change() -> impl Strategy<Value = Change> {
    let ops = any::<bool>();
    let pick = 0..100usize;
    prop_oneof![
        2 => ops.prop_map(|ops| Change::Open { ops }),
        3 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::Comment { ops, pick }),
        1 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::LogOnly { ops, pick }),
        2 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::EditComment { ops, pick }),
        2 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::DeleteComment { ops, pick }),
        1 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::Close { ops, pick }),
        1 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::Delete { ops, pick }),
        2 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::WriteWiki { ops, pick }),
        1 => (ops, pick.clone()).prop_map(|(ops, pick)| Change::DeleteWiki { ops, pick }),
        1 => pick.clone().prop_map(|pick| Change::WriteDocument { pick }),
        1 => pick.prop_map(|pick| Change::DeleteDocument { pick }),
        1 => Just(Change::DropOps),
    ]
}

fn pick<T: Clone>(list: &[T], i: usize) -> Option<T> {
    (!list.is_empty()).then(|| list[i % list.len()].clone())
}

/// Applies `change`; returns whether OPS is still configured.
fn apply(b: &mut Space, change: &Change, serial: usize) -> bool {
    let key = |ops: bool| if ops { OPS } else { APP };
    let issues =
        |b: &mut Space, k: &str| -> Vec<u64> { b.project_mut(k).issues.keys().copied().collect() };
    match *change {
        Change::Open { ops } => {
            b.open(
                key(ops),
                &format!("item {serial}"),
                &format!("body {serial}"),
            );
        }
        Change::Comment { ops, pick: i } | Change::LogOnly { ops, pick: i } => {
            if let Some(n) = pick(&issues(b, key(ops)), i) {
                let text = match change {
                    Change::Comment { .. } => format!("comment {serial}"),
                    _ => String::new(),
                };
                b.comment(key(ops), n, "dee", &text);
            }
        }
        Change::EditComment { ops, pick: i } | Change::DeleteComment { ops, pick: i } => {
            if let Some(n) = pick(&issues(b, key(ops)), i) {
                let comments: Vec<u64> = b.project_mut(key(ops)).issues[&n]
                    .comments
                    .iter()
                    .map(|c| c.id)
                    .collect();
                if let Some(c) = pick(&comments, i) {
                    if matches!(change, Change::EditComment { .. }) {
                        b.edit_comment(key(ops), n, c, &format!("edited {serial}"));
                    } else {
                        b.delete_comment(key(ops), n, c);
                    }
                }
            }
        }
        Change::Close { ops, pick: i } => {
            if let Some(n) = pick(&issues(b, key(ops)), i) {
                b.close(key(ops), n);
            }
        }
        Change::Delete { ops, pick: i } => {
            if let Some(n) = pick(&issues(b, key(ops)), i) {
                b.delete(key(ops), n);
            }
        }
        Change::WriteWiki { ops, pick: i } => {
            b.write_wiki(
                key(ops),
                &format!("page {}", i % 3),
                &format!("text {serial}"),
            );
        }
        Change::DeleteWiki { ops, pick: i } => {
            let pages: Vec<u64> = b.project_mut(key(ops)).wikis.keys().copied().collect();
            if let Some(id) = pick(&pages, i) {
                b.delete_wiki(key(ops), id);
            }
        }
        Change::WriteDocument { pick: i } => {
            b.write_document(
                APP,
                &format!("doc{}", i % 3),
                "Doc",
                &format!("plain {serial}"),
            );
        }
        Change::DeleteDocument { pick: i } => {
            let docs: Vec<String> = b.project_mut(APP).documents.keys().cloned().collect();
            if let Some(id) = pick(&docs, i) {
                b.delete_document(APP, &id);
            }
        }
        Change::DropOps => return false,
    }
    true
}

/// After every change and incremental run, what the runs sent so far (documents replaced,
/// tombstones applied) equals what a fresh run sends.
async fn incremental_equals_full(changes: Vec<Change>) -> Result<(), TestCaseError> {
    let server = BacklogServer::start(space(), KEY).await;
    let mut live = Synced::new(config(&server, &[APP, OPS]));
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut with_ops = true;
    let mut steps = vec![None];
    steps.extend(changes.into_iter().map(Some));
    for (serial, change) in steps.into_iter().enumerate() {
        if let Some(change) = &change {
            with_ops &= server.with(|b| apply(b, change, serial));
        }
        let projects: &[&str] = if with_ops { &[APP, OPS] } else { &[APP] };
        live.config.projects = projects.iter().map(|p| p.to_string()).collect();
        let run = live.run().await;
        for id in &run.gone {
            held.remove(id);
        }
        held.extend(run.documents);
        let fresh = Synced::new(config(&server, projects)).run().await;
        prop_assert!(fresh.gone.is_empty());
        prop_assert_eq!(
            &held,
            &fresh.documents,
            "after step {} ({:?}): incremental runs hold other documents than a fresh run",
            serial,
            change
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_equal_a_fresh_run_after_generated_changes() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&prop::collection::vec(change(), 1..8), |changes| {
        tokio::task::block_in_place(|| handle.block_on(incremental_equals_full(changes)))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn routes(server: &BacklogServer) -> BTreeMap<String, usize> {
    let mut routes = BTreeMap::new();
    for (route, _) in server.log() {
        *routes.entry(route).or_default() += 1;
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_and_comments_are_paged_to_their_end_and_change_log_only_comments_are_dropped() {
    let mut b = space();
    for i in 0..249 {
        b.open(APP, &format!("bulk {i}"), "x");
    }
    for i in 0..230 {
        b.comment(APP, 1, "bo", &format!("note {i}"));
    }
    let server = BacklogServer::start(b, KEY).await;
    let run = Synced::new(config(&server, &[APP])).run().await;
    let issues = run
        .documents
        .keys()
        .filter(|d| d.starts_with("APP/issues/"))
        .count();
    assert_eq!(issues, 250);
    let first: serde_json::Value = serde_json::from_str(&run.documents["APP/issues/1"]).unwrap();
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        231,
        "the empty change-log comment is dropped"
    );
    assert_eq!(messages[230]["text"], "note 229");
    assert_eq!(first["metadata"]["issue_key"], "APP-1");
    assert_eq!(
        first["metadata"]["categories"],
        serde_json::json!(["backend"])
    );
    let routes = routes(&server);
    assert_eq!(routes["issues"], 3, "{routes:?}");
    // Three pages for the busy issue, one for each of the others.
    assert_eq!(routes["issue_comments"], 3 + 249, "{routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_come_from_the_feed_and_an_edited_comment_is_read_again() {
    let server = BacklogServer::start(space(), KEY).await;
    let live = Synced::new(config(&server, &[APP, OPS]));
    let first = live.run().await;
    let ops_wiki: u64 = server.with(|b| *b.project_mut(OPS).wikis.keys().next().unwrap());
    assert!(first
        .documents
        .contains_key(&format!("OPS/wikis/{ops_wiki}")));
    let runbook: serde_json::Value =
        serde_json::from_str(&first.documents[&format!("OPS/wikis/{ops_wiki}")]).unwrap();
    assert_eq!(
        runbook["text"], "# Paging\nalways answer",
        "Backlog notation rendered"
    );

    server.with(|b| {
        let comment = b.project_mut(APP).issues[&1].comments[0].id;
        b.edit_comment(APP, 1, comment, "It was the assembler.");
        b.delete(OPS, 1);
        b.delete_wiki(OPS, ops_wiki);
    });
    server.clear_log();
    let second = live.run().await;
    assert_eq!(
        second.gone,
        BTreeSet::from(["OPS/issues/1".to_string(), format!("OPS/wikis/{ops_wiki}")])
    );
    let issue = &second.documents["APP/issues/1"];
    assert!(issue.contains("It was the assembler."), "{issue}");
    let routes = routes(&server);
    assert!(
        !routes.contains_key("issue"),
        "a deletion in the feed costs no request: {routes:?}"
    );
    assert_eq!(routes["issue_comments"], 1, "{routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_withholds_a_mass_deletion_until_deletions_are_allowed() {
    let mut b = space();
    for i in 0..9 {
        b.open(APP, &format!("extra {i}"), "x");
    }
    let server = BacklogServer::start(b, KEY).await;
    let mut cfg = config(&server, &[APP]);
    cfg.max_deletion_share = 0.2;
    let live = Synced::new(cfg);
    live.run().await;
    server.with(|b| {
        for n in 2..9 {
            b.delete(APP, n);
        }
    });
    let withheld = live.run().await;
    assert!(withheld.gone.is_empty(), "{:?}", withheld.gone);
    // Withheld deletions are not forgotten: the next run with --allow-deletions sends them.
    let allowed = live.run_stopping(true, None).await.unwrap();
    assert_eq!(allowed.gone.len(), 7, "{:?}", allowed.gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_project_resumes_with_nothing_lost_and_nothing_sent_twice() {
    let mut b = Space::default();
    let keys: Vec<String> = (0..6).map(|i| format!("P{i}")).collect();
    for key in &keys {
        b.add_project(key, "markdown");
        for i in 0..3 {
            b.open(key, &format!("issue {i} of {key}"), "text");
        }
        b.write_wiki(key, "Home", &format!("home of {key}"));
    }
    let server = BacklogServer::start(b, KEY).await;
    let all = || config(&server, &[]);
    let live = Synced::new(all());
    let first = live.run_stopping(false, Some(6)).await.unwrap();
    let cursor = Cursor::load(&live.store, "backlog", "s").await.unwrap();
    let recorded: BTreeSet<String> = cursor.scope_names().into_iter().collect();
    assert!(!recorded.is_empty(), "the first project was read whole");
    assert!(
        recorded.len() < keys.len(),
        "the run stopped before the last project"
    );

    let second = live.run().await;
    for id in second.documents.keys() {
        assert!(
            !recorded.iter().any(|p| id.starts_with(&format!("{p}/"))),
            "{id} was sent again though its project was recorded"
        );
    }
    let mut held = first.documents;
    held.extend(second.documents);
    let fresh = Synced::new(all()).run().await;
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        fresh.documents.keys().collect::<Vec<_>>(),
        "nothing lost"
    );
    assert_eq!(held.len(), 6 * 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_window_is_kept_without_a_429_one_request_at_a_time() {
    let mut b = space();
    for i in 0..40 {
        b.open(APP, &format!("bulk {i}"), "x");
    }
    let server = BacklogServer::start(b, KEY).await;
    server.rate_window(20, 2);
    let text = format!(
        "base_url = \"{}\"\napi_key_env = \"{}\"\nprojects = [\"APP\"]\n",
        server.base_url(),
        key_env(KEY),
    );
    let cfg: BacklogConfig = toml::from_str(&text).unwrap();
    let run = Synced::new(cfg).run().await;
    assert_eq!(run.documents.len(), 41 + 2);
    let (admitted, refused) = server.window_counts();
    assert_eq!(refused, 0, "{admitted} admitted");
}

/// Sleeps until 50 ms into the next window of `period` seconds (the server's windows are
/// aligned to the epoch), so what a test does first falls in one window.
async fn at_window_start(period: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = Duration::from_secs((now.as_secs() / period + 1) * period);
    tokio::time::sleep(next - now + Duration::from_millis(50)).await;
}

/// Another program with the same key has spent the read window the source knows nothing
/// of: its first request is refused with 429 (`X-RateLimit-Remaining: 0`, the reset to come,
/// no Retry-After). The source waits until that reset, sending nothing more to the closed
/// window (each request there would be counted as another refusal), then finishes the run
/// with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_the_reset_with_no_request_in_between_and_nothing_is_lost() {
    const PERIOD: u64 = 2;
    let server = BacklogServer::start(space(), KEY).await;
    server.rate_window(40, PERIOD);
    at_window_start(PERIOD).await;
    server.spend_window("read");
    let reset = Duration::from_secs(
        (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / PERIOD
            + 1)
            * PERIOD,
    );
    let started = Instant::now();
    let until_reset = reset.saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
    let run = Synced::new(config(&server, &[APP, OPS])).run().await;
    let (_, refused) = server.window_counts();
    assert_eq!(
        refused, 1,
        "one request found the window closed; none was sent again before its reset"
    );
    assert!(
        started.elapsed() + Duration::from_millis(20) >= until_reset,
        "the run ended {:?} after it started, before the reset {until_reset:?} away",
        started.elapsed()
    );
    let fresh = Synced::new(config(&server, &[APP, OPS])).run().await;
    assert_eq!(
        run.documents.keys().collect::<Vec<_>>(),
        fresh.documents.keys().collect::<Vec<_>>(),
        "nothing lost"
    );
    assert_eq!(run.documents, fresh.documents);
}

/// What a tracing subscriber wrote, every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One thread: the source's tasks log to this test's subscriber.
#[tokio::test]
async fn a_refused_key_stops_the_source_naming_its_variable_and_the_key_shows_in_no_output() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let (plain, json) = (captured.clone(), captured.clone());
    // Plain and JSON log lines, every level.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(move || plain.clone()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || json.clone()),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut b = space();
    b.add_project("SECRET", "markdown");
    b.forbidden.push("SECRET".into());
    let server = BacklogServer::start(b, KEY).await;
    let mut shown = Vec::<String>::new();

    // A forbidden project (its 403 body quotes the key) is skipped; the others are read.
    let live = Synced::new(config(&server, &["SECRET", "MISSING", APP]));
    let run = live.run().await;
    assert!(run.documents.contains_key("APP/issues/1"));
    shown.extend(run.documents.values().cloned());

    // A wrong key: 401, whose body echoes the key given.
    let wrong = "wR0ngK3";
    let mut bad = config(&server, &[APP]);
    bad.api_key_env = key_env(wrong);
    let error = Synced::new(bad.clone())
        .run_stopping(false, None)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&bad.api_key_env), "{text}");
    assert!(
        text.contains("Authentication failure"),
        "Backlog's message is quoted: {text}"
    );
    shown.push(text);
    shown.push(format!("{error:?}"));
    shown.push(format!("{bad:?}"));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("SECRET"),
        "the skipped project is logged: {logs}"
    );
    assert!(
        logs.contains("No permission"),
        "Backlog's message is quoted: {logs}"
    );
    shown.push(logs);
    for output in &shown {
        assert!(!output.contains(KEY), "the key shows: {output}");
        assert!(!output.contains(wrong), "the wrong key shows: {output}");
    }
}

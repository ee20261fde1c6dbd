//! The `discord` source against the local Discord API server (`support/discord_api.rs`):
//! incremental runs equal a fresh run after generated sequences of changes (posts, edits,
//! deletions of messages, threads and channels, forum posts, archiving), a run stopped
//! mid-backfill resumes with nothing lost and nothing sent twice, a bot without the Message
//! Content intent stops the source naming it, a refused token stops the source naming its
//! variable (never the token) while a forbidden channel is skipped, the per-bucket and global
//! limits are kept with no 429, and the token shows in no output.

mod common;
#[path = "support/discord_api.rs"]
mod discord_api;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use discord_api::{now, DiscordServer, Guild};
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::store::LocalStore;
use kass_pipeline::RawRecord;
use kass_sources::cursor::Cursor;
use kass_sources::discord::DiscordConfig;
use kass_sources::{BuildSource, SourceDeps};
use proptest::prelude::*;

const TOKEN: &str = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs";
const GUILD: &str = "197038439483310086";
const DAY: i64 = 86_400;

fn token_env(value: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let var = format!(
        "KASS_TEST_DISCORD_TOKEN_{}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    std::env::set_var(&var, value);
    var
}

fn config_with(server: &DiscordServer, token: &str, extra: &str) -> DiscordConfig {
    let since = chrono::DateTime::from_timestamp(now() - 120 * DAY, 0)
        .unwrap()
        .date_naive();
    let text = format!(
        "base_url = \"{}\"\ntoken_env = \"{}\"\nguilds = [\"{GUILD}\"]\nsince = \"{since}\"\nlookback_days = 14\nmax_deletion_share = 1.0\n{extra}\n[retry]\ninitial_backoff_ms = 20\n",
        server.base_url(),
        token_env(token),
    );
    toml::from_str(&text).unwrap()
}

fn config(server: &DiscordServer) -> DiscordConfig {
    config_with(server, TOKEN, "")
}

/// What one run sent: each document as JSON (its version left out), and the tombstones.
#[derive(Debug, Default)]
struct Fetched {
    documents: BTreeMap<String, String>,
    sent: Vec<String>,
    gone: BTreeSet<String>,
}

struct Synced {
    config: DiscordConfig,
    _dir: tempfile::TempDir,
    store: LocalStore,
}

impl Synced {
    fn new(config: DiscordConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        Self {
            config,
            _dir: dir,
            store,
        }
    }

    async fn run(&self) -> Fetched {
        self.run_stopping(None).await.expect("the source failed")
    }

    async fn run_stopping(
        &self,
        stop_after: Option<usize>,
    ) -> Result<Fetched, kass_pipeline::FatalError> {
        let cursor = Arc::new(Cursor::load(&self.store, "discord", "s").await.unwrap());
        let outbox = TombstoneOutbox::default();
        let source = self.config.clone().build_with(SourceDeps {
            cursor: Some(cursor.clone()),
            tombstones: Some(outbox.clone()),
            allow_deletions: false,
        })?;
        let run = common::try_run_source(source, "discord", stop_after).await?;
        cursor.save(&self.store, "discord").await.unwrap();
        let mut fetched = Fetched::default();
        for record in run.records {
            let RawRecord::Chat(mut chat) = record else {
                panic!("discord sends chat records")
            };
            chat.version = None;
            fetched.sent.push(chat.document_id.clone());
            fetched.documents.insert(
                chat.document_id.clone(),
                serde_json::to_string(&chat).unwrap(),
            );
        }
        for tombstones in outbox.take().into_values() {
            fetched
                .gone
                .extend(tombstones.into_iter().map(|t| t.document_id));
        }
        Ok(fetched)
    }
}

/// A guild: a text channel with a month of history and a thread, an announcement channel, a
/// forum with a post, a voice channel (not read).
fn guild() -> (Guild, [String; 3]) {
    let mut g = Guild::new(GUILD);
    let general = g.add_channel("general", 0);
    let news = g.add_channel("news", 5);
    let forum = g.add_channel("help", 15);
    g.add_channel("voice", 2);
    g.roles
        .insert("165511591545143296".into(), "Moderators".into());
    let t0 = now();
    for i in 0..40 {
        g.post(
            &general,
            "u1",
            &format!("history {i} <@&165511591545143296>"),
            t0 - (40 - i) * DAY / 2,
        );
    }
    g.post(&news, "u2", "release 1.0 is out", t0 - 20 * DAY);
    g.post(&news, "u2", "release 1.1 is out", t0 - 2 * DAY);
    let thread = g.thread(&general, "deploys", "how do we deploy?", t0 - 3 * DAY);
    g.post(&thread, "u2", "with the pipeline", t0 - 3 * DAY + 60);
    let old = g.thread(&general, "old question", "anyone?", t0 - 60 * DAY);
    g.threads.get_mut(&old).unwrap().archived_at = Some(t0 - 59 * DAY);
    let post = g.thread(&forum, "Cannot log in", "the login page loops", t0 - DAY);
    g.post(&post, "u3", "clear your cookies", t0 - DAY + 30);
    (g, [general, news, forum])
}

#[derive(Debug, Clone)]
enum Change {
    Post { channel: usize, hours_ago: i64 },
    Edit { pick: usize },
    Delete { pick: usize },
    NewThread { channel: usize },
    Reply { pick: usize },
    Archive { pick: usize },
    DeleteThread { pick: usize },
    DeleteChannel,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..3usize, 0..200i64).prop_map(|(channel, hours_ago)| Change::Post { channel, hours_ago }),
        2 => any::<usize>().prop_map(|pick| Change::Edit { pick }),
        2 => any::<usize>().prop_map(|pick| Change::Delete { pick }),
        1 => (0..3usize).prop_map(|channel| Change::NewThread { channel }),
        2 => any::<usize>().prop_map(|pick| Change::Reply { pick }),
        1 => any::<usize>().prop_map(|pick| Change::Archive { pick }),
        1 => any::<usize>().prop_map(|pick| Change::DeleteThread { pick }),
        1 => Just(Change::DeleteChannel),
    ]
}

/// Applies a change to messages inside the lookback window (the promise: edits and
/// deletions there are seen; older history is immutable by design).
fn apply(g: &mut Guild, channels: &[String; 3], change: &Change, reconciled: bool) {
    let t = now();
    let window = t - 13 * DAY;
    let recent: Vec<(String, u64)> = g
        .messages
        .iter()
        .flat_map(|(c, ms)| ms.values().map(move |m| (c.clone(), m.id, m.at)))
        .filter(|(c, _, at)| {
            *at >= window && (g.channels.contains_key(c) || g.threads.contains_key(c))
        })
        .map(|(c, id, _)| (c, id))
        .collect();
    let threads: Vec<String> = g.threads.keys().cloned().collect();
    let live: Vec<&String> = channels
        .iter()
        .filter(|c| g.channels.contains_key(*c))
        .collect();
    match change {
        Change::Post { channel, hours_ago } => {
            if let Some(c) = live.get(*channel % live.len().max(1)) {
                if g.channels[*c].kind != 15 {
                    let c = (*c).clone();
                    g.post(&c, "u4", "a new message", t - hours_ago * 3600);
                }
            }
        }
        Change::Edit { pick } if !recent.is_empty() => {
            let (c, id) = &recent[pick % recent.len()];
            g.edit(c, *id, "edited text", t);
        }
        Change::Delete { pick } if !recent.is_empty() => {
            let (c, id) = &recent[pick % recent.len()];
            g.delete(c, *id);
        }
        Change::NewThread { channel } => {
            if let Some(c) = live.get(*channel % live.len().max(1)) {
                let c = (*c).clone();
                g.thread(&c, "new topic", "a new thread", t - 3600);
            }
        }
        Change::Reply { pick } if !threads.is_empty() => {
            let id = &threads[pick % threads.len()];
            if g.threads[id].archived_at.is_none() {
                g.post(id, "u5", "a reply", t - 60);
            }
        }
        Change::Archive { pick } if !threads.is_empty() => {
            let id = &threads[pick % threads.len()];
            let thread = g.threads.get_mut(id).unwrap();
            if thread.archived_at.is_none() {
                thread.archived_at = Some(t - 30);
            }
        }
        Change::DeleteThread { pick } if !threads.is_empty() => {
            // Threads archived before the window are listed again only by a run that reads
            // the archived listings whole (every `reconcile_days`): only then is their
            // deletion seen.
            let id = threads[pick % threads.len()].clone();
            if reconciled || g.threads[&id].archived_at.is_none_or(|at| at >= window) {
                g.delete_thread(&id);
            }
        }
        Change::DeleteChannel => g.delete_channel(&channels[1]),
        _ => {}
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn incremental_runs_equal_a_fresh_run_after_generated_changes(
        rounds in proptest::collection::vec(proptest::collection::vec(change(), 1..4), 1..4),
        reconciled in any::<bool>(),
    ) {
        runtime().block_on(async {
            let (g, channels) = guild();
            let server = DiscordServer::start(g, TOKEN).await;
            // Archived threads listed whole every run, or (30 days) never in this test.
            let every = if reconciled { 0 } else { 30 };
            let synced = Synced::new(config_with(&server, TOKEN, &format!("reconcile_days = {every}")));
            let first = synced.run().await;
            let mut held: BTreeMap<String, String> = first.documents;
            for round in &rounds {
                server.with(|g| {
                    for change in round {
                        apply(g, &channels, change, reconciled);
                    }
                });
                let next = synced.run().await;
                for gone in &next.gone {
                    held.remove(gone);
                }
                held.extend(next.documents);
            }
            let fresh = Synced::new(config(&server)).run().await;
            let held_ids: BTreeSet<&String> = held.keys().collect();
            let fresh_ids: BTreeSet<&String> = fresh.documents.keys().collect();
            assert_eq!(held_ids, fresh_ids, "after {rounds:?} (reconciled: {reconciled})");
            for (id, doc) in &fresh.documents {
                assert_eq!(&held[id], doc, "document {id} after {rounds:?}");
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_threads_and_forum_posts_become_slack_shaped_documents() {
    let (g, [general, news, forum]) = guild();
    let server = DiscordServer::start(g, TOKEN).await;
    let fetched = Synced::new(config(&server)).run().await;
    let ids: Vec<&String> = fetched.documents.keys().collect();
    let threads: Vec<&&String> = ids.iter().filter(|d| d.contains("/thread/")).collect();
    // The active thread, the archived one (backfill) and the forum post.
    assert_eq!(threads.len(), 3, "{ids:?}");
    assert!(threads
        .iter()
        .any(|d| d.starts_with(&format!("{forum}/thread/"))));
    assert!(ids.iter().any(|d| d.starts_with(&format!("{news}/"))));
    let days = ids
        .iter()
        .filter(|d| d.starts_with(&format!("{general}/")) && !d.contains("/thread/"))
        .count();
    assert!(
        days >= 19,
        "every day of the general channel's 20 days: {days}"
    );
    let any_day = fetched
        .documents
        .iter()
        .find(|(d, _)| d.starts_with(&format!("{general}/2")))
        .unwrap()
        .1;
    assert!(any_day.contains("@Moderators"), "roles rendered: {any_day}");
    // No voice channel was asked for.
    assert!(fetched.sent.iter().all(|d| !d.is_empty()));
    let once: BTreeSet<&String> = fetched.sent.iter().collect();
    assert_eq!(
        once.len(),
        fetched.sent.len(),
        "a document sent twice in one run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_backfill_resumes_with_nothing_lost_or_sent_twice() {
    let mut g = Guild::new(GUILD);
    let big = g.add_channel("big", 0);
    let t0 = now();
    // 450 messages over 90 days: five pages, older than the 14-day window.
    for i in 0..450 {
        g.post(&big, "u1", &format!("m{i}"), t0 - 100 * DAY + i * DAY / 5);
    }
    let server = DiscordServer::start(g, TOKEN).await;
    let fresh = Synced::new(config(&server)).run().await;
    let synced = Synced::new(config(&server));
    let first = synced.run_stopping(Some(30)).await.unwrap();
    assert!(
        first.sent.len() < fresh.sent.len(),
        "the first run was cut short"
    );
    let second = synced.run().await;
    let window_start = chrono::DateTime::from_timestamp(t0 - 14 * DAY, 0)
        .unwrap()
        .date_naive();
    let in_window = |d: &String| {
        d.rsplit('/')
            .next()
            .and_then(|day| day.parse::<chrono::NaiveDate>().ok())
            .is_some_and(|day| day >= window_start)
    };
    // Backfilled days are sent once over both runs; the window's are read again by design.
    let old_first: BTreeSet<&String> = first.sent.iter().filter(|d| !in_window(d)).collect();
    let old_second: BTreeSet<&String> = second.sent.iter().filter(|d| !in_window(d)).collect();
    assert!(
        old_first.is_disjoint(&old_second),
        "sent twice: {:?}",
        old_first.intersection(&old_second).collect::<Vec<_>>()
    );
    let mut all: BTreeMap<String, String> = first.documents;
    all.extend(second.documents);
    assert_eq!(all, fresh.documents, "something was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_without_the_message_content_intent_stops_the_source_naming_it() {
    let (mut g, _) = guild();
    g.no_content_intent = true;
    let server = DiscordServer::start(g, TOKEN).await;
    let error = Synced::new(config(&server))
        .run_stopping(None)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("Message Content intent"), "{error}");
    assert!(error.contains("MESSAGE_CONTENT"), "{error}");
}

/// What a tracing subscriber wrote, every level.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
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
async fn a_refused_token_stops_the_source_naming_its_variable_and_the_token_shows_in_no_output() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let (plain, json) = (captured.clone(), captured.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(move || plain.clone()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || json.clone()),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let (mut g, [general, ..]) = guild();
    g.channels.get_mut(&general).unwrap().forbidden = true;
    let server = DiscordServer::start(g, TOKEN).await;
    let mut shown = Vec::<String>::new();
    let good = config(&server);
    let run = Synced::new(good.clone()).run().await;
    shown.extend(run.documents.values().cloned());
    shown.push(format!("{good:?}"));

    let wrong = "Mzk4NjIyNDgz.wrong.token-value";
    let bad = config_with(&server, wrong, "");
    let error = Synced::new(bad.clone())
        .run_stopping(None)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&bad.token_env), "{text}");
    assert!(text.contains("401"), "{text}");
    shown.push(text);
    shown.push(format!("{error:?}"));
    shown.push(format!("{bad:?}"));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(&general),
        "the skipped channel is logged: {logs}"
    );
    shown.push(logs);
    for output in &shown {
        assert!(!output.contains(TOKEN), "the token shows: {output}");
        assert!(
            !output.contains("wrong.token"),
            "the wrong token shows: {output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_channel_is_skipped_and_the_others_read() {
    let (mut g, [general, news, _]) = guild();
    g.channels.get_mut(&general).unwrap().forbidden = true;
    g.no_manage_threads = true;
    let server = DiscordServer::start(g, TOKEN).await;
    let fetched = Synced::new(config(&server)).run().await;
    assert!(fetched
        .documents
        .keys()
        .all(|d| !d.starts_with(&format!("{general}/"))));
    assert!(fetched
        .documents
        .keys()
        .any(|d| d.starts_with(&format!("{news}/"))));
    // A 403 is not retried: one request per listing of the forbidden channel.
    let asked = server
        .log()
        .iter()
        .filter(|(_, major)| *major == format!("channels/{general}"))
        .count();
    assert!(asked <= 3, "the forbidden channel was asked {asked} times");
    for doc in fetched.documents.values() {
        assert!(!doc.contains(TOKEN));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_bucket_and_global_limits_are_kept_with_no_429() {
    let mut g = Guild::new(GUILD);
    let t0 = now();
    for c in 0..3 {
        let id = g.add_channel(&format!("c{c}"), 0);
        for i in 0..500 {
            g.post(&id, "u1", &format!("m{i}"), t0 - 60 * DAY + i * 3600);
        }
    }
    let server = DiscordServer::start(g, TOKEN).await;
    // 5 requests per second per bucket and channel (Get Channel Messages' documented
    // figure), 12 per second over every route.
    server.rate_limits(5, 1, 12);
    let started = std::time::Instant::now();
    let fetched = Synced::new(config_with(&server, TOKEN, "global_per_second = 12.0"))
        .run()
        .await;
    let (admitted, refused, global_refused) = server.refusals();
    assert!(!fetched.documents.is_empty());
    assert_eq!(
        (refused, global_refused),
        (0, 0),
        "429s answered; {admitted} admitted in {:?}",
        started.elapsed()
    );
    let messages = server.log().iter().filter(|(r, _)| r == "messages").count();
    eprintln!(
        "{admitted} requests ({messages} of messages) in {:?}",
        started.elapsed()
    );
}

/// The guild as DiscordChatExporter would export it: one JSON file per channel and thread,
/// the content's markup rendered by the exporter (`@Moderators`), the author's display name
/// as `nickname`.
fn export(g: &Guild, dir: &std::path::Path) {
    let iso = |at: i64| {
        chrono::DateTime::from_timestamp(at, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
            .to_string()
    };
    let messages = |container: &str| -> Vec<serde_json::Value> {
        g.messages
            .get(container)
            .map(|ms| {
                ms.values()
                    .map(|m| {
                        let content = m.content.replace("<@&165511591545143296>", "@Moderators");
                        serde_json::json!({
                            "id": m.id.to_string(), "type": "Default", "timestamp": iso(m.at),
                            "timestampEdited": m.edited.map(iso), "isPinned": false,
                            "content": content,
                            "author": {"id": m.author, "name": m.author, "discriminator": "0000",
                                       "nickname": format!("User {}", m.author), "isBot": m.bot},
                            "attachments": [], "embeds": [], "stickers": [], "reactions": [],
                            "mentions": []
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let guild = serde_json::json!({"id": GUILD, "name": "Guild"});
    for c in g.channels.values().filter(|c| c.kind != 2) {
        let file = serde_json::json!({
            "guild": guild,
            "channel": {"id": c.id, "type": "GuildTextChat", "categoryId": null, "category": null, "name": c.name},
            "messages": messages(&c.id),
        });
        std::fs::write(dir.join(format!("{}.json", c.id)), file.to_string()).unwrap();
    }
    for t in g.threads.values() {
        let file = serde_json::json!({
            "guild": guild,
            "channel": {"id": t.id, "type": "GuildPublicThread", "categoryId": t.parent,
                        "category": g.channels[&t.parent].name, "name": t.name},
            "messages": messages(&t.id),
        });
        std::fs::write(dir.join(format!("{}.json", t.id)), file.to_string()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_the_same_messages_gives_the_same_documents_and_ids() {
    let (mut g, [general, ..]) = guild();
    let first = g.messages[&general].keys().next().copied().unwrap();
    g.edit(&general, first, "an edited message", now() - DAY);
    let dir = tempfile::tempdir().unwrap();
    export(&g, dir.path());
    let server = DiscordServer::start(g, TOKEN).await;
    let api = Synced::new(config(&server)).run().await;
    let config: kass_sources::discord_export::DiscordExportConfig =
        toml::from_str(&format!("path = {:?}", dir.path())).unwrap();
    let run = common::run_source(config.build().unwrap(), "discord_export").await;
    let without_origin = |json: &str| {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v.as_object_mut().unwrap().remove("origin");
        v.as_object_mut().unwrap().remove("version");
        v
    };
    let exported: BTreeMap<String, serde_json::Value> = run
        .records
        .iter()
        .map(|r| match r {
            RawRecord::Chat(c) => (
                c.document_id.clone(),
                without_origin(&serde_json::to_string(c).unwrap()),
            ),
            RawRecord::Document(d) => panic!("a chat record expected, not {}", d.id),
        })
        .collect();
    let from_api: BTreeMap<String, serde_json::Value> = api
        .documents
        .iter()
        .map(|(id, json)| (id.clone(), without_origin(json)))
        .collect();
    assert_eq!(
        exported.keys().collect::<Vec<_>>(),
        from_api.keys().collect::<Vec<_>>(),
        "the same document ids"
    );
    for (id, doc) in &from_api {
        assert_eq!(&exported[id], doc, "document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_archived_long_ago_and_deleted_is_seen_gone_when_the_listings_are_read_whole() {
    let (g, [general, ..]) = guild();
    let server = DiscordServer::start(g, TOKEN).await;
    for (every, seen) in [(30, false), (0, true)] {
        server.with(|g| {
            if !g.threads.values().any(|t| t.name == "old question") {
                g.thread(&general, "old question", "anyone?", now() - 60 * DAY);
            }
        });
        // A thread archived 59 days ago (re-created for the second case, with a new id).
        let old = server.with(|g| {
            g.threads
                .values()
                .find(|t| t.name == "old question")
                .unwrap()
                .id
                .clone()
        });
        server.with(|g| g.threads.get_mut(&old).unwrap().archived_at = Some(now() - 59 * DAY));
        let document = format!("{general}/thread/{old}");
        let synced = Synced::new(config_with(
            &server,
            TOKEN,
            &format!("reconcile_days = {every}"),
        ));
        let first = synced.run().await;
        assert!(
            first.documents.contains_key(&document),
            "{every}: backfilled"
        );
        server.with(|g| g.delete_thread(&old));
        let next = synced.run().await;
        assert_eq!(
            next.gone.contains(&document),
            seen,
            "reconcile_days = {every}"
        );
    }
}

/// A renamed channel is read again whole (days and threads past the window, archived ones
/// included): every document of it is sent again carrying the new name, so no stored chunk
/// keeps the old one; the run after that reads only the window again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_channel_is_read_again_whole_with_its_new_name() {
    let (g, [general, _, _]) = guild();
    let server = DiscordServer::start(g, TOKEN).await;
    let synced = Synced::new(config(&server));
    let first = synced.run().await;
    let held: BTreeSet<String> = first
        .documents
        .keys()
        .filter(|d| d.starts_with(&format!("{general}/")))
        .cloned()
        .collect();
    assert!(held.len() > 15, "{held:?}");
    server.with(|g| g.rename_channel(&general, "town-square"));
    let renamed = synced.run().await;
    let resent: BTreeSet<String> = renamed
        .documents
        .keys()
        .filter(|d| d.starts_with(&format!("{general}/")))
        .cloned()
        .collect();
    assert_eq!(
        resent, held,
        "every document of the renamed channel sent again"
    );
    for id in &resent {
        let doc = &renamed.documents[id];
        assert!(doc.contains("town-square"), "{id}: {doc}");
        assert!(
            !doc.contains("\"general\""),
            "{id} keeps the old name: {doc}"
        );
    }
    assert!(renamed.gone.is_empty(), "{:?}", renamed.gone);
    let after = synced.run().await;
    let again = after
        .documents
        .keys()
        .filter(|d| d.starts_with(&format!("{general}/")))
        .count();
    assert!(
        again < held.len(),
        "the rereading ended: {again} sent again"
    );
}

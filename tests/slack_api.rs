//! The `slack_api` source through the `kass` binaries, against the local Slack Web API server,
//! a real Chroma and a counting embedding provider:
//!
//! - the acceptance property: after every incremental `kass run` over generated sequences of
//!   workspace changes (new messages, late replies, edits, deletions, channels added and
//!   removed), and after every batch file written so far is delivered again in a random
//!   order, replayed in full and partly redelivered, the chunk ids in Chroma equal those of a
//!   from-scratch `kass fetch` of the workspace as it is now, and no chunk holds a text
//!   deleted or edited away at the source;
//! - the split deployment: the fetcher Lambda (Runtime API round trip, token from Secrets
//!   Manager) and `kass fetch` write batches to S3 on moto, `kass embed --listen` embeds them
//!   from the S3 events, and deletions reach Chroma across the boundary.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;
#[path = "../sources/tests/support/slack_web_api.rs"]
mod slack_web_api;
#[path = "support/split_world.rs"]
mod split_world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_provider::{Api, FakeOptions, FakeProvider};
use kass_pipeline::store::ObjectStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use slack_web_api::{ts, ServerOptions, SlackServer, Workspace};
use support::{batch_chunk_ids, kass, run_ok, ChromaServer};

const TOKEN: &str = "xoxb-3333-kass-binary-test-token";
const TOKEN_ENV: &str = "KASS_SLACK_API_TEST_TOKEN";
const KEY_ENV: &str = "KASS_SLACK_API_TEST_KEY";

/// Unix seconds at noon (UTC) `days` days ago, minus `secs`.
fn noon(days: i64, secs: i64) -> u64 {
    let day = chrono::Utc::now().date_naive() - chrono::Days::new(days as u64);
    (day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp() - secs) as u64
}

/// `[[sources]]` of the slack_api source at `base_url`, fast limits for a local server.
fn source_toml(name: &str, base_url: &str) -> String {
    format!(
        "\n[[sources]]\ntype = \"slack_api\"\nname = \"{name}\"\nbase_url = \"{base_url}\"\ntoken_env = \"{TOKEN_ENV}\"\nmax_deletion_share = 1.0\n\n[sources.rate_limit]\nrate_scale = 1000.0\n"
    )
}

/// Every chunk id of `source` in a collection.
async fn chroma_ids(url: &str, collection: &str, source: &str) -> BTreeSet<String> {
    let request = json!({"where": {"source": source}, "include": []});
    let records = support::chroma_get(url, collection, request)
        .await
        .unwrap_or_else(|| panic!("Chroma at {url} has no collection {collection}"));
    records["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{records}"))
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------------------------------------
// Incremental equals full
// ------------------------------------------------------------------------------------------

/// One change to the workspace; indices pick among what exists, modulo its count.
#[derive(Debug, Clone)]
enum Change {
    Post { channel: usize, days_ago: i64 },
    Reply { message: usize },
    Edit { message: usize },
    Delete { message: usize },
    AddChannel,
    RemoveChannel { channel: usize },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..4usize, 0..6i64).prop_map(|(channel, days_ago)| Change::Post { channel, days_ago }),
        3 => (0..1000usize).prop_map(|message| Change::Reply { message }),
        2 => (0..1000usize).prop_map(|message| Change::Edit { message }),
        2 => (0..1000usize).prop_map(|message| Change::Delete { message }),
        1 => Just(Change::AddChannel),
        1 => (0..4usize).prop_map(|channel| Change::RemoveChannel { channel }),
    ]
}

/// A workspace to change: two channels with a few days of messages and a thread.
fn starting_workspace() -> Workspace {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_user("U2", "bo");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "general");
    ws.post("dev-help", &ts(noon(4, 0), 0), "U1", "the build is red");
    ws.post("dev-help", &ts(noon(4, -60), 0), "U2", "looking");
    ws.post("general", &ts(noon(3, 0), 0), "U2", "release on friday?");
    ws.reply(
        "general",
        &ts(noon(3, 0), 0),
        &ts(noon(3, -30), 0),
        "U1",
        "yes",
    );
    ws.post("general", &ts(noon(20, 0), 0), "U1", "an old thread");
    ws.reply(
        "general",
        &ts(noon(20, 0), 0),
        &ts(noon(5, 0), 0),
        "U2",
        "still going",
    );
    ws
}

/// Applies `change`; `serial` makes every new message's ts and text unique.
fn apply(ws: &mut Workspace, change: &Change, serial: u32) {
    let live: Vec<String> = ws.channels.iter().map(|c| c.name.clone()).collect();
    let messages: Vec<(String, String)> = ws
        .channels
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| (c.name.clone(), m.ts.clone())))
        .collect();
    // What the source can see change: a message inside the lookback window, or one in a
    // thread with a reply inside it (a watched thread). An edit or deletion of an older
    // message in a quiet thread or day is not visible to an incremental read of the Web API
    // (Slack has no edit feed; docs/sources/slack_api.md, "What it does not see"), so the
    // property does not ask for it.
    let window_start = (chrono::Utc::now().timestamp() - 13 * 86_400) as f64;
    let secs = |ts: &str| ts.parse::<f64>().unwrap_or(0.0);
    let visible: Vec<(String, String)> = ws
        .channels
        .iter()
        .flat_map(|c| {
            c.messages
                .iter()
                .filter(|m| {
                    let root = m.thread_ts.clone().unwrap_or_else(|| m.ts.clone());
                    secs(&m.ts) >= window_start
                        || c.messages.iter().any(|r| {
                            r.ts != root
                                && r.thread_ts.as_deref() == Some(root.as_str())
                                && secs(&r.ts) >= window_start
                        })
                })
                .map(|m| (c.name.clone(), m.ts.clone()))
        })
        .collect();
    let text = format!("message {serial}");
    match change {
        Change::Post { channel, days_ago } if !live.is_empty() => {
            let at = ts(noon(*days_ago, 0), serial);
            ws.post(&live[channel % live.len()], &at, "U1", &text);
        }
        Change::Reply { message } if !messages.is_empty() => {
            let (channel, parent) = &messages[message % messages.len()];
            let c = ws.channel(channel);
            let parent = c
                .message(parent)
                .and_then(|m| m.thread_ts.clone())
                .unwrap_or_else(|| parent.clone());
            // Now: later than any parent, so possibly a late reply to an old thread.
            let at = ts(chrono::Utc::now().timestamp() as u64 - 600, serial);
            ws.reply(channel, &parent, &at, "U2", &text);
        }
        Change::Edit { message } if !visible.is_empty() => {
            let (channel, at) = &visible[message % visible.len()];
            let edited = ts(chrono::Utc::now().timestamp() as u64, serial);
            ws.edit(channel, at, &format!("edited {serial}"), &edited);
        }
        Change::Delete { message } if !visible.is_empty() => {
            let (channel, at) = &visible[message % visible.len()];
            ws.delete(channel, at);
        }
        Change::AddChannel => {
            let name = format!("new-{serial}");
            ws.add_channel(&format!("CN{serial}"), &name);
            ws.post(&name, &ts(noon(1, 0), serial), "U2", &text);
        }
        Change::RemoveChannel { channel } if !live.is_empty() => {
            ws.remove_channel(&live[channel % live.len()]);
        }
        _ => {}
    }
}

/// A kass.toml over a local store, the Slack server, Chroma and the counting provider.
fn property_config(
    dir: &Path,
    store: &str,
    server: &SlackServer,
    chroma: &ChromaServer,
    provider: &FakeProvider,
    collection: &str,
) -> PathBuf {
    let path = dir.join(format!("{store}.toml"));
    std::fs::write(
        &path,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n{}\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"counted\"\ndimensions = 8\napi_key_env = \"{KEY_ENV}\"\n{}",
            dir.join(store).display(),
            source_toml("slack", &server.base_url()),
            provider.base_url(),
            chroma.config(collection),
        ),
    )
    .unwrap();
    path
}

/// `kass ARGS --config CONFIG`, which must succeed without the token in its output; returns
/// (stdout, stderr). Off the runtime's threads: the servers the run talks to live on them.
async fn kass_ok(args: &[&str], config: &Path) -> (String, String) {
    let mut cmd = kass();
    cmd.env(TOKEN_ENV, TOKEN)
        .env(KEY_ENV, "test-key-123")
        .args(args)
        .arg("--config")
        .arg(config);
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked into the output: {stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// Runs `changes`, each followed by an incremental `kass run`, and checks Chroma against a
/// from-scratch fetch after every one.
async fn incremental_equals_full(
    chroma: &ChromaServer,
    provider: &FakeProvider,
    case: u32,
    changes: Vec<Change>,
    disorder: u64,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let server = SlackServer::start(starting_workspace(), ServerOptions::new(TOKEN)).await;
    let collection = format!("incremental-{case}");
    let live = property_config(dir.path(), "live", &server, chroma, provider, &collection);
    let mut steps = vec![None];
    steps.extend(changes.into_iter().map(Some));
    // Every message text the workspace ever held.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (serial, change) in steps.into_iter().enumerate() {
        if let Some(change) = &change {
            server.with_workspace(|ws| apply(ws, change, serial as u32));
        }
        let (_, run_log) = kass_ok(&["run"], &live).await;
        // Every batch file written so far delivered again in a random order (one process,
        // several loaded at once), the source replayed in full, and a random part of them
        // again, newest first: none of it may change what Chroma holds.
        let store = dir.path().join("live");
        let keys = batch_keys_in_random_order(&store, disorder ^ u64::from(serial as u32));
        prop_assert!(!keys.is_empty(), "no batch file under {}", store.display());
        {
            let mut args = vec!["embed", "--keys"];
            args.extend(keys.iter().map(String::as_str));
            kass_ok(&args, &live).await;
            kass_ok(&["replay", "--source", "slack"], &live).await;
            let mut part: Vec<&str> = keys.iter().step_by(2).map(String::as_str).collect();
            part.sort_unstable_by(|a, b| b.cmp(a));
            let mut args = vec!["embed", "--keys"];
            args.extend(part);
            kass_ok(&args, &live).await;
        }
        let removed = server.with_workspace(|ws| {
            let live_texts = texts(ws);
            seen.extend(live_texts.iter().cloned());
            seen.difference(&live_texts).cloned().collect::<Vec<_>>()
        });
        for (id, document) in chroma_documents(&chroma.url(), &collection, "slack").await {
            for text in &removed {
                prop_assert!(
                    !holds_word(&document, text),
                    "after step {} ({:?}): chunk {} still holds {:?}, deleted or edited away at the source:\n{}",
                    serial,
                    change,
                    id,
                    text,
                    document
                );
            }
        }
        let fresh_store = format!("fresh-{serial}");
        let fresh = property_config(
            dir.path(),
            &fresh_store,
            &server,
            chroma,
            provider,
            "unused",
        );
        kass_ok(&["fetch"], &fresh).await;
        let expected: BTreeSet<String> = batch_chunk_ids(&dir.path().join(&fresh_store))
            .into_iter()
            .collect();
        let stored = chroma_ids(&chroma.url(), &collection, "slack").await;
        prop_assert!(!expected.is_empty() || stored.is_empty());
        prop_assert_eq!(
            &stored,
            &expected,
            "after step {} ({:?}): Chroma holds {} chunks, a fresh fetch makes {}; the run said:\n{}",
            serial,
            change,
            stored.len(),
            expected.len(),
            &run_log[run_log.len().saturating_sub(4000)..]
        );
    }
    Ok(())
}

/// The batch files under a local store, in an order `seed` decides.
fn batch_keys_in_random_order(store: &Path, seed: u64) -> Vec<String> {
    use std::hash::{Hash, Hasher};
    let mut keys: Vec<(u64, String)> = support::files_under(store)
        .into_iter()
        .filter(|k| k.contains("/chunked/"))
        .map(|k| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (seed, &k).hash(&mut h);
            (h.finish(), k)
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// Every message text of a workspace.
fn texts(ws: &Workspace) -> BTreeSet<String> {
    ws.channels
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.text.clone()))
        .collect()
}

/// Whether `text` stands in `document` as whole words ("message 1" is not in "message 12").
fn holds_word(document: &str, text: &str) -> bool {
    document.match_indices(text).any(|(at, _)| {
        let before = document[..at].chars().next_back();
        let after = document[at + text.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Every (id, document text) of `source` in a collection.
async fn chroma_documents(url: &str, collection: &str, source: &str) -> Vec<(String, String)> {
    let request = json!({"where": {"source": source}, "include": ["documents"]});
    let records = support::chroma_get(url, collection, request)
        .await
        .unwrap_or_else(|| panic!("Chroma at {url} has no collection {collection}"));
    let ids = records["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{records}"));
    let documents = records["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("{records}"));
    ids.iter()
        .zip(documents)
        .map(|(i, d)| {
            (
                i.as_str().unwrap().to_string(),
                d.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn whole_words_only() {
    assert!(holds_word("ana: message 1\nbo: yes", "message 1"));
    assert!(!holds_word("ana: message 12", "message 1"));
    assert!(holds_word("yes", "yes"));
    assert!(!holds_word("eyes", "yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_incremental_run_chroma_holds_what_a_fresh_fetch_makes() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 6,
        max_shrink_iters: 8,
        ..ProptestConfig::default()
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let handle = tokio::runtime::Handle::current();
    let strategy = (prop::collection::vec(change(), 3..6), any::<u64>());
    let result = runner.run(&strategy, |(changes, disorder)| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::task::block_in_place(|| {
            handle.block_on(incremental_equals_full(
                &chroma, &provider, case, changes, disorder,
            ))
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// A channel renamed (same id): by the next run every stored chunk of it, those of days and
/// threads older than the lookback window included, carries the new `channel` and `title`,
/// without one embedding call (the texts are unchanged: metadata is updated in place); a
/// replay of the older batches does not bring the old name back; and an incremental run with
/// nothing changed sends no metadata update at all (unchanged documents keep their version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_channel_s_chunks_follow_its_name_without_embedding() {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_user("U2", "bo");
    ws.add_channel("C1", "dev-help");
    for days in [40, 30, 2] {
        ws.post(
            "dev-help",
            &ts(noon(days, 0), 0),
            "U1",
            &format!("status {days}"),
        );
    }
    // A thread far older than the window, no longer watched.
    ws.post("dev-help", &ts(noon(35, 0), 0), "U1", "an old question");
    ws.reply(
        "dev-help",
        &ts(noon(35, 0), 0),
        &ts(noon(35, -60), 0),
        "U2",
        "an old answer",
    );
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = property_config(dir.path(), "live", &server, &chroma, &provider, "renamed");
    let names = |records: &Value| -> BTreeSet<(String, String)> {
        records["metadatas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let title = m["title"].as_str().unwrap_or_default();
                (
                    m["channel"].as_str().unwrap_or_default().to_string(),
                    title
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let get = || async {
        support::chroma_get(
            &chroma.url(),
            "renamed",
            json!({"where": {"source": "slack"}, "include": ["metadatas"]}),
        )
        .await
        .unwrap()
    };
    kass_ok(&["run"], &config).await;
    let before = get().await;
    let chunks = before["ids"].as_array().unwrap().len();
    assert!(chunks >= 4, "{before}");
    assert_eq!(
        names(&before),
        BTreeSet::from([("dev-help".to_string(), "#dev-help".to_string())])
    );

    // Nothing changed: no document gets a new version, so no stored metadata is rewritten.
    let metrics = |log: &str| {
        log.lines()
            .filter(|l| l.contains("metadata"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (quiet, quiet_err) = kass_ok(&["run"], &config).await;
    let by_id = |records: &Value| -> std::collections::BTreeMap<String, Value> {
        records["ids"]
            .as_array()
            .unwrap()
            .iter()
            .zip(records["metadatas"].as_array().unwrap())
            .map(|(id, m)| (id.as_str().unwrap().to_string(), m.clone()))
            .collect()
    };
    let (quiet_ids, before_ids) = (by_id(&get().await), by_id(&before));
    let changed: Vec<(&String, &Value, Option<&Value>)> = quiet_ids
        .iter()
        .filter(|(id, m)| before_ids.get(*id) != Some(m))
        .map(|(id, m)| (id, m, before_ids.get(id)))
        .collect();
    assert!(
        changed.is_empty() && quiet_ids.len() == before_ids.len(),
        "an unchanged run rewrote metadata: {changed:#?}\n{:?}",
        metrics(&format!("{quiet}{quiet_err}"))
    );

    server.with_workspace(|ws| ws.channel_mut("dev-help").name = "dev-support".into());
    let calls = provider.log().len();
    kass_ok(&["run"], &config).await;
    let after = get().await;
    assert_eq!(after["ids"].as_array().unwrap().len(), chunks, "{after}");
    assert_eq!(
        names(&after),
        BTreeSet::from([("dev-support".to_string(), "#dev-support".to_string())]),
        "every chunk, the old thread and days included, carries the new name"
    );
    assert_eq!(provider.log().len(), calls, "a rename costs no embedding");

    kass_ok(&["replay", "--source", "slack"], &config).await;
    assert_eq!(
        names(&get().await),
        BTreeSet::from([("dev-support".to_string(), "#dev-support".to_string())]),
        "a replay of the older batches does not bring the old name back"
    );
}

// ------------------------------------------------------------------------------------------
// The split deployment
// ------------------------------------------------------------------------------------------

/// Split across S3 and SQS: a sequence of changes, each fetched by `kass fetch` into S3 on moto
/// (the bucket announcing every batch file on the queue); every batch file so far announced
/// again in a random order (what S3 and SQS redeliveries and a dead-letter redrive do); two
/// `kass embed --listen` workers consuming the queue at once. After every step Chroma equals a
/// fresh fetch of the workspace and holds no text deleted or edited away.
async fn split_converges(
    server: &SlackServer,
    w: &split_world::World,
    changes: Vec<Change>,
    disorder: u64,
) -> Result<(), TestCaseError> {
    let url = w.chroma.as_ref().unwrap().url();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (serial, change) in changes.into_iter().enumerate() {
        let serial = serial as u32 + 1000;
        server.with_workspace(|ws| apply(ws, &change, serial));
        let mut fetch = w.kass();
        fetch.env(TOKEN_ENV, TOKEN).arg("fetch");
        tokio::task::spawn_blocking(move || run_ok(&mut fetch))
            .await
            .unwrap();
        let keys: Vec<String> = {
            let mut keys: Vec<(u64, String)> = w
                .batch_keys("slackapi")
                .await
                .into_iter()
                .map(|k| {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (disorder, serial, &k).hash(&mut h);
                    (h.finish(), k)
                })
                .collect();
            keys.sort();
            keys.into_iter().map(|(_, k)| k).collect()
        };
        w.announce(&keys).await;
        let listener = || {
            let mut cmd = w.kass();
            cmd.args([
                "embed",
                "--listen",
                &format!("sqs://{}", split_world::QUEUE),
                "--until-idle",
                "--wait",
                "2",
            ]);
            tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        };
        let (a, b) = (listener(), listener());
        a.await.unwrap();
        b.await.unwrap();

        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = fresh_dir.path().join("fresh.toml");
        std::fs::write(
            &fresh,
            format!(
                "[store]\ntype = \"local\"\npath = \"{}\"\n{}",
                fresh_dir.path().join("store").display(),
                source_toml("slackapi", &server.base_url())
            ),
        )
        .unwrap();
        kass_ok(&["fetch"], &fresh).await;
        let expected: BTreeSet<String> = batch_chunk_ids(&fresh_dir.path().join("store"))
            .into_iter()
            .collect();
        let stored = chroma_ids(&url, "split", "slackapi").await;
        prop_assert_eq!(
            &stored,
            &expected,
            "after {:?}: two listeners over {} batch files announced again in a random order",
            change,
            keys.len()
        );
        let removed = server.with_workspace(|ws| {
            let live_texts = texts(ws);
            seen.extend(live_texts.iter().cloned());
            seen.difference(&live_texts).cloned().collect::<Vec<_>>()
        });
        for (id, document) in chroma_documents(&url, "split", "slackapi").await {
            for text in &removed {
                prop_assert!(
                    !holds_word(&document, text),
                    "after {:?}: chunk {} still holds {:?}",
                    change,
                    id,
                    text
                );
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_across_s3_and_sqs_two_listeners_converge_whatever_the_order() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2,
        max_shrink_iters: 0,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let strategy = (prop::collection::vec(change(), 3..5), any::<u64>());
    let result = runner.run(&strategy, |(changes, disorder)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let server =
                    SlackServer::start(starting_workspace(), ServerOptions::new(TOKEN)).await;
                let w = split_world::World::start(
                    FakeOptions::new(Api::OpenAi),
                    &source_toml("slackapi", &server.base_url()),
                )
                .await;
                w.setup_triggers("slackapi").await;
                split_converges(&server, &w, changes, disorder).await
            })
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[path = "support/runtime_api.rs"]
mod runtime_api;

/// The fetcher Lambda's first run and `kass fetch`'s later one write slack_api batches to S3;
/// the listener embeds them from the S3 events; a deleted day and an edited message reach
/// Chroma across the boundary (the deletion as a tombstone batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_by_the_lambda_and_kass_fetch_then_embedded_from_s3_events() {
    use runtime_api::{Outcome, RuntimeApi};
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    for day in 1..=6 {
        ws.post(
            "dev-help",
            &ts(noon(day, 0), 0),
            "U1",
            &format!("status of day {day}"),
        );
    }
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let w = split_world::World::start(
        FakeOptions::new(Api::OpenAi),
        &source_toml("slackapi", &server.base_url()),
    )
    .await;
    w.setup_triggers("slack,wiki,slackapi").await;

    // The fetcher Lambda on its schedule, the token only in Secrets Manager.
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(w.moto.endpoint())
        .load()
        .await;
    let secret_arn = aws_sdk_secretsmanager::Client::new(&shared)
        .create_secret()
        .name("kass/slack")
        .secret_string(format!(r#"{{"{TOKEN_ENV}": "{TOKEN}"}}"#))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let api = RuntimeApi::start().await;
    let config_text = std::fs::read_to_string(&w.config).unwrap();
    let mut fetcher = w
        .lambda(
            env!("CARGO_BIN_EXE_kass-fetcher"),
            api.env("kass-fetcher"),
            &config_text,
        )
        .env("KASS_SECRETS", &secret_arn)
        .env(split_world::KEY_ENV, "unused")
        .env_remove(TOKEN_ENV)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let schedule: Value =
        serde_json::from_str(include_str!("../examples/events/schedule.json")).unwrap();
    let id = api.invoke(schedule);
    let outcome = api.outcome(&id, Duration::from_secs(120)).await;
    fetcher.kill().unwrap();
    fetcher.wait().unwrap();
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}")
    };
    assert_eq!(fetched["complete"], true, "{fetched}");
    let first = w.batch_keys("slackapi").await;
    assert!(!first.is_empty(), "{fetched}");
    let state = w.store.get("_state/slackapi.json").await.unwrap();
    let state: Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(
        state["scopes"]["C1"]["documents"].as_array().map(Vec::len),
        Some(6),
        "{state}"
    );
    assert!(!String::from_utf8_lossy(&serde_json::to_vec(&state).unwrap()).contains("xoxb"));

    w.listen_until_idle().await;
    let url = w.chroma.as_ref().unwrap().url();
    let embedded = chroma_ids(&url, "split", "slackapi").await;
    assert_eq!(embedded, w.chunk_ids(&first).await);

    // A day deleted, another edited; `kass fetch` resumes from the Lambda's state.
    server.with_workspace(|ws| {
        ws.delete("dev-help", &ts(noon(2, 0), 0));
        ws.edit(
            "dev-help",
            &ts(noon(3, 0), 0),
            "status of day 3, corrected",
            &ts(noon(0, 0), 0),
        );
    });
    let out = tokio::task::spawn_blocking({
        let mut cmd = w.kass();
        cmd.env(TOKEN_ENV, TOKEN).arg("fetch");
        move || run_ok(&mut cmd)
    })
    .await
    .unwrap();
    let keys = w.batch_keys("slackapi").await;
    let new: Vec<String> = keys
        .iter()
        .filter(|k| !first.contains(k))
        .cloned()
        .collect();
    assert!(
        new.len() >= 2,
        "documents and a tombstone batch: {new:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.listen_until_idle().await;

    // What Chroma holds of the source now equals a fresh fetch of the workspace.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_config = fresh.path().join("fresh.toml");
    std::fs::write(
        &fresh_config,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n{}",
            fresh.path().join("store").display(),
            source_toml("slackapi", &server.base_url())
        ),
    )
    .unwrap();
    kass_ok(&["fetch"], &fresh_config).await;
    let expected: BTreeSet<String> = batch_chunk_ids(&fresh.path().join("store"))
        .into_iter()
        .collect();
    assert_eq!(expected.len(), 5);
    assert_eq!(chroma_ids(&url, "split", "slackapi").await, expected);
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

/// The source's metrics, read from the Prometheus exposition of in-process fetches: documents
/// emitted, tombstones by reason, freshness, backfill backlog, skipped channels, requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_metrics_tell_documents_tombstones_freshness_and_backlog() {
    use kass::assembly::{fetch_half, load_cursors, save_cursors, FetchPlan};
    use kass::config::KassConfig;
    use kass_pipeline::shutdown::Shutdown;
    use support::metric_value;

    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    ws.add_channel("C2", "private-ish");
    for day in 1..=5 {
        ws.post(
            "dev-help",
            &ts(noon(day, 0), 0),
            "U1",
            &format!("day {day}"),
        );
    }
    ws.post("private-ish", &ts(noon(1, 0), 0), "U1", "hidden");
    let server = SlackServer::start(ws, {
        let mut o = ServerOptions::new(TOKEN);
        o.not_in_channel = vec!["C2".into()];
        o
    })
    .await;
    std::env::set_var(TOKEN_ENV, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = KassConfig::parse(&format!(
        "[store]\ntype = \"local\"\npath = \"{}\"\n{}",
        dir.path().join("store").display(),
        source_toml("metered", &server.base_url())
    ))
    .unwrap();
    let store = kass_pipeline::store::build_store(&config.store)
        .await
        .unwrap();
    let fetch = || async {
        let plan = FetchPlan {
            cursors: load_cursors(&config, store.as_ref()).await.unwrap(),
            allow_deletions: false,
        };
        fetch_half(&config, store.clone(), Shutdown::default(), &plan)
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        save_cursors(&plan.cursors, store.as_ref()).await.unwrap();
        handle.render()
    };
    let before = chrono::Utc::now().timestamp() as f64;
    let text = fetch().await;
    let source = [("source", "metered")];
    let value = |text: &str, name: &str, labels: &[(&str, &str)]| {
        metric_value(text, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(value(&text, "kass_source_documents_total", &source), 5.0);
    assert_eq!(value(&text, "kass_source_backlog_scopes", &source), 0.0);
    // Freshness needs every selected channel read; C2 refuses, but that is the bot not being
    // in it, not a failure.
    assert!(value(&text, "kass_source_last_success_timestamp_seconds", &source) >= before);
    assert_eq!(
        value(
            &text,
            "kass_source_scopes_skipped_total",
            &[("source", "metered"), ("reason", "not_in_channel")]
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "kass_source_requests_total",
            &[
                ("source", "metered"),
                ("method", "conversations.history"),
                ("status", "200")
            ]
        ) >= 2.0
    );

    server.with_workspace(|ws| ws.delete("dev-help", &ts(noon(2, 0), 0)));
    let text = fetch().await;
    assert_eq!(
        value(
            &text,
            "kass_source_tombstones_total",
            &[("source", "metered"), ("reason", "deleted")]
        ),
        1.0
    );
    let batches = support::files_under(&dir.path().join("store"));
    let tombstone_batch = batches
        .iter()
        .filter(|f| f.starts_with("metered/chunked/"))
        .map(|f| std::fs::read_to_string(dir.path().join("store").join(f)).unwrap())
        .find(|b| b.contains("\"tombstones\""))
        .expect("a tombstone batch");
    let batch: Value = serde_json::from_str(&tombstone_batch).unwrap();
    assert_eq!(batch["schema_version"], 3, "tombstones carry versions");
    assert_eq!(batch["chunk_count"], 0);
    assert_eq!(batch["tombstones"][0]["reason"], "deleted");
    let cursor: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("store/_state/metered.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        batch["tombstones"][0]["version"], cursor["run_version"],
        "the tombstone has the version of the run that found the document gone"
    );
}

// ------------------------------------------------------------------------------------------
// kass status
// ------------------------------------------------------------------------------------------

/// `kass status --json` after a run: the source's last fetch, channels, backlog and position;
/// the dead letter a refused chunk left, by stage and kind; the collection per source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_source_the_dead_letters_and_the_collection() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let mut options = FakeOptions::new(Api::OpenAi);
    options.poison_marker = Some("POISONED".into());
    let provider = FakeProvider::start(options).await;
    let mut ws = starting_workspace();
    ws.post("dev-help", &ts(noon(2, 0), 0), "U1", "POISONED message");
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let config = property_config(dir.path(), "store", &server, &chroma, &provider, "status");
    let before = chrono::Utc::now();
    kass_ok(&["run"], &config).await;
    let (out, _) = kass_ok(&["status", "--json"], &config).await;
    let status: Value = serde_json::from_str(&out).unwrap();
    let source = &status["sources"][0];
    assert_eq!(source["name"], "slack", "{status}");
    assert_eq!(source["kind"], "slack_api");
    let fetched: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(source["last_fetch"].clone()).unwrap();
    assert!(fetched >= before, "{status}");
    assert_eq!(source["scopes"]["kind"], "channels", "{status}");
    assert_eq!(source["scopes"]["scopes"], 2, "{status}");
    assert_eq!(source["scopes"]["in_backlog"], 0);
    assert!(source["scopes"]["documents"].as_u64().unwrap() >= 4);
    assert!(source["scopes"]["watched_threads"].is_u64(), "{status}");
    assert_eq!(status["dead_letters"]["total"], 1, "{status}");
    assert_eq!(status["dead_letters"]["groups"][0]["item_kind"], "chunk");
    let stored = chroma_ids(&chroma.url(), "status", "slack").await.len() as u64;
    assert!(stored > 0);
    assert_eq!(
        status["collection"]["per_source"]["slack"], stored,
        "{status}"
    );
    assert_eq!(status["collection"]["chunks"], stored);

    // The screen says the same for a person.
    let (screen, _) = kass_ok(&["status"], &config).await;
    assert!(screen.contains("slack_api"), "{screen}");
    assert!(screen.contains("2 channels, 0 in backlog"), "{screen}");
    assert!(screen.contains("dead letters 1"), "{screen}");
}

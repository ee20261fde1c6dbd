//! The `discord` source through the binaries, against the local Discord REST API v10 server
//! (`sources/tests/support/discord_api.rs`), a real Chroma and the local MiniLM model: a
//! phrase that occurs only in one message of a thread finds that thread, and one only in a
//! forum post finds the post; an incremental run after a deleted message and an edited one
//! leaves neither the deleted nor the old text in Chroma, and the token never appears in any
//! output, not even when a refusing server's 401 quotes it back; the fetcher Lambda reads the
//! guild through the Runtime API with the token only in Secrets Manager (moto), the embedder
//! half embeds what it wrote from the S3 events, the token is in no log, response, batch or
//! state, and a second invocation resumes from the saved state; after generated sequences of
//! changes (messages posted, edited, deleted, threads and forum posts started and deleted),
//! each followed by `kass run`, Chroma holds exactly the chunks a fresh `kass fetch` writes.

mod support;

#[path = "support/api_source.rs"]
mod api_source;
#[path = "../sources/tests/support/discord_api.rs"]
mod discord_api;
#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/split_world.rs"]
mod split_world;

use std::collections::BTreeSet;

use api_source::{
    chroma_follows_the_source, chroma_ids, invoke_fetcher, store_secret, write_config, Secret,
};
use discord_api::{now, DiscordServer, Guild};
use fake_provider::{Api, FakeOptions, FakeProvider};
use kass_pipeline::store::ObjectStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::ChromaServer;

const TOKEN: &str = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.kassBinaryTestToken7Zq";
const SECRET: Secret = Secret {
    env: "KASS_DISCORD_BINARY_TEST_TOKEN",
    value: TOKEN,
};
const GUILD: &str = "197038439483310086";
const DAY: i64 = 86_400;

/// The guild and what the tests name in it.
struct Made {
    guild: Guild,
    general: String,
    forum: String,
    /// The thread of `general` whose second message holds the disk phrase.
    thread: String,
    forum_post: String,
    /// (container, id) of the disk message in `thread`.
    disk: (String, u64),
    /// (container, id) of the Tuesdays message in `general`.
    tuesdays: (String, u64),
}

/// A text channel with a day of talk and a thread, a forum with a post, all inside the
/// lookback window.
fn guild() -> Made {
    let mut g = Guild::new(GUILD);
    let general = g.add_channel("general", 0);
    let forum = g.add_channel("help", 15);
    let t0 = now();
    g.post(&general, "u1", "Good morning everyone.", t0 - 2 * DAY);
    let tuesdays = g.post(
        &general,
        "u2",
        "Deploys go out on Tuesdays.",
        t0 - 2 * DAY + 60,
    );
    let thread = g.thread(&general, "nightly build", "The arm64 job is red.", t0 - DAY);
    let disk = g.post(
        &thread,
        "u3",
        "The runner ran out of disk space while linking the release binary.",
        t0 - DAY + 60,
    );
    g.post(&thread, "u1", "Thanks, looking.", t0 - DAY + 120);
    let forum_post = g.thread(
        &forum,
        "Cannot log in",
        "The login page keeps sending me back to the password form.",
        t0 - 3 * DAY,
    );
    g.post(
        &forum_post,
        "u4",
        "Clearing cookies fixed it.",
        t0 - 3 * DAY + 30,
    );
    Made {
        disk: (thread.clone(), disk),
        tuesdays: (general.clone(), tuesdays),
        guild: g,
        general,
        forum,
        thread,
        forum_post,
    }
}

/// The source's `[[sources]]` table.
fn source(server: &DiscordServer) -> String {
    let since = chrono::DateTime::from_timestamp(now() - 60 * DAY, 0)
        .unwrap()
        .date_naive();
    format!(
        "[[sources]]\ntype = \"discord\"\nname = \"discord\"\nbase_url = \"{}\"\ntoken_env = \"{}\"\nguilds = [\"{GUILD}\"]\nsince = \"{since}\"\nlookback_days = 14\nmax_deletion_share = 1.0\n[sources.rate_limit]\nrate_scale = 1000.0\n",
        server.base_url(),
        SECRET.env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phrase_only_in_a_thread_finds_it_and_deletions_and_edits_reach_chroma() {
    let made = guild();
    let (general, forum) = (made.general.clone(), made.forum.clone());
    let thread_doc = format!("{general}/thread/{}", made.thread);
    let post_doc = format!("{forum}/thread/{}", made.forum_post);
    let (disk, tuesdays) = (made.disk.clone(), made.tuesdays.clone());
    let server = DiscordServer::start(made.guild, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_config(
        dir.path(),
        "kass",
        &source(&server),
        None,
        &chroma,
        "discord",
    );
    let cfg = config.clone();
    let (hit, post_hit, status) = tokio::task::spawn_blocking(move || {
        SECRET.run(&["run"], &cfg);
        (
            SECRET.top_hit(&cfg, "the CI machine had no free disk left"),
            SECRET.top_hit(&cfg, "sign-in redirects me to the password screen"),
            SECRET.run(&["status", "--json"], &cfg),
        )
    })
    .await
    .unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let scopes = &status["sources"][0]["scopes"];
    assert_eq!(scopes["kind"], "channels", "{status}");
    assert_eq!(scopes["scopes"], 2, "{status}");
    assert_eq!(hit["metadata"]["document_id"], thread_doc.as_str(), "{hit}");
    assert_eq!(
        post_hit["metadata"]["document_id"],
        post_doc.as_str(),
        "{post_hit}"
    );

    // The disk message deleted (Discord says nothing of it: only reading the window again
    // finds it gone), the Tuesdays message edited.
    server.with(|g| {
        g.delete(&disk.0, disk.1);
        g.edit(
            &tuesdays.0,
            tuesdays.1,
            "Deploys go out on Thursdays now.",
            now(),
        );
    });
    let cfg = config.clone();
    let texts = tokio::task::spawn_blocking(move || {
        SECRET.run(&["run"], &cfg);
        SECRET.run(
            &["query", "disk space deploys Tuesdays", "-k", "10", "--json"],
            &cfg,
        )
    })
    .await
    .unwrap();
    assert!(!texts.contains("ran out of disk space"), "{texts}");
    assert!(!texts.contains("Tuesdays"), "{texts}");
    assert!(texts.contains("Thursdays"), "{texts}");
    assert!(texts.contains(&thread_doc), "{texts}");

    // A server refusing the token, its 401 quoting back the Authorization header it was
    // given: the run stops naming the variable, and the token shows nowhere.
    let refusing = DiscordServer::start(guild().guild, "another-bot-token-0123456789").await;
    let config = write_config(
        dir.path(),
        "refused",
        &source(&refusing),
        None,
        &chroma,
        "discord",
    );
    let out = tokio::task::spawn_blocking(move || SECRET.run_refused(&["run"], &config))
        .await
        .unwrap();
    assert!(out.contains(SECRET.env), "{out}");
}

/// The fetcher Lambda on its schedule reads the guild with the token only in Secrets
/// Manager; the batches it writes to S3 are embedded from their S3 events into Chroma; the
/// token is in no output, no batch and no saved state. A second invocation, after a message
/// of the thread is deleted, sends the thread again without it, resuming from the state the
/// first one saved in S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_by_the_lambda_with_the_token_in_secrets_manager() {
    use runtime_api::Outcome;
    let made = guild();
    let thread_doc = format!("{}/thread/{}", made.general, made.thread);
    let post_doc = format!("{}/thread/{}", made.forum, made.forum_post);
    let disk = made.disk.clone();
    let server = DiscordServer::start(made.guild, TOKEN).await;
    let w = split_world::World::start(
        FakeOptions::new(Api::OpenAi),
        &format!("\n{}", source(&server)),
    )
    .await;
    w.setup_triggers("discord").await;
    let secret_arn = store_secret(&w, "kass/discord", SECRET).await;

    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}\n{logs}")
    };
    assert_eq!(fetched["complete"], true, "{fetched}");
    let first = w.batch_keys("discord").await;
    assert!(!first.is_empty(), "{fetched}");
    let state = w.store.get("_state/discord.json").await.unwrap();
    let state_text = String::from_utf8_lossy(&state).into_owned();
    SECRET.assert_absent(&state_text, "the saved state");
    let state: Value = serde_json::from_slice(&state).unwrap();
    let saved: BTreeSet<String> = state["scopes"][&made.general]["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("{state}"))
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert!(saved.contains(&thread_doc), "{state}");
    for key in &first {
        let bytes = w.store.get(key).await.unwrap();
        SECRET.assert_absent(&String::from_utf8_lossy(&bytes), key);
    }
    w.listen_until_idle().await;
    let url = w.chroma.as_ref().unwrap().url();
    let embedded = chroma_ids(&url, "split", "discord").await;
    assert_eq!(embedded, w.chunk_ids(&first).await);
    let held = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "discord"}, "include": ["metadatas"]}),
    )
    .await
    .unwrap();
    let documents: BTreeSet<&str> = held["metadatas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["document_id"].as_str().unwrap())
        .collect();
    assert!(documents.contains(thread_doc.as_str()), "{documents:?}");
    assert!(documents.contains(post_doc.as_str()), "{documents:?}");

    // The message deleted: the next invocation (a new Lambda environment) resumes from the
    // saved state, reads the window again and sends the thread again without it.
    server.with(|g| g.delete(&disk.0, disk.1));
    server.clear_log();
    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    assert!(
        matches!(outcome, Outcome::Response(_)),
        "{outcome:?}\n{logs}"
    );
    // Resumed: the backfill the first invocation finished is not read again, so no
    // listing reaches below the window (`before` paging of the archived threads or of
    // messages older than it would show as more than one messages request per channel).
    let log = server.log();
    let general_reads = log
        .iter()
        .filter(|(route, major)| {
            route == "messages" && *major == format!("channels/{}", made.general)
        })
        .count();
    assert_eq!(general_reads, 1, "{log:?}");
    let keys = w.batch_keys("discord").await;
    let new: Vec<String> = keys.into_iter().filter(|k| !first.contains(k)).collect();
    assert!(!new.is_empty(), "the edited thread is sent again");
    for key in &new {
        let bytes = w.store.get(key).await.unwrap();
        SECRET.assert_absent(&String::from_utf8_lossy(&bytes), key);
    }
    w.listen_until_idle().await;
    let texts = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "discord"}, "include": ["documents"]}),
    )
    .await
    .unwrap();
    let texts = texts["documents"].to_string();
    assert!(!texts.contains("ran out of disk space"), "{texts}");
    assert!(texts.contains("Tuesdays"), "{texts}");
}

// ------------------------------------------------------------------------------------------
// Incremental equals full, in Chroma
// ------------------------------------------------------------------------------------------

/// One change to the guild; `pick` chooses among what exists, modulo its count.
#[derive(Debug, Clone)]
enum Change {
    /// A message in `general` posted `.0` hours ago.
    Post(i64),
    Edit(usize),
    Delete(usize),
    /// A thread started in `general` (`false`) or a forum post (`true`).
    NewThread(bool),
    Reply(usize),
    DeleteThread(usize),
}

fn change() -> impl Strategy<Value = Change> {
    let pick = 0..16usize;
    prop_oneof![
        (0..100i64).prop_map(Change::Post),
        pick.clone().prop_map(Change::Edit),
        pick.clone().prop_map(Change::Delete),
        any::<bool>().prop_map(Change::NewThread),
        pick.clone().prop_map(Change::Reply),
        pick.prop_map(Change::DeleteThread),
    ]
}

fn pick<T: Clone>(list: &[T], n: usize) -> Option<T> {
    (!list.is_empty()).then(|| list[n % list.len()].clone())
}

fn apply(g: &mut Guild, general: &str, forum: &str, change: &Change, serial: usize) {
    let t = now();
    let messages: Vec<(String, u64)> = g
        .messages
        .iter()
        .flat_map(|(c, ms)| ms.keys().map(move |id| (c.clone(), *id)))
        .collect();
    let threads: Vec<String> = g.threads.keys().cloned().collect();
    match *change {
        Change::Post(hours_ago) => {
            g.post(
                general,
                "u5",
                &format!("message{serial} posted"),
                t - hours_ago * 3600,
            );
        }
        Change::Edit(n) => {
            if let Some((c, id)) = pick(&messages, n) {
                g.edit(&c, id, &format!("edited{serial} text"), t);
            }
        }
        Change::Delete(n) => {
            if let Some((c, id)) = pick(&messages, n) {
                g.delete(&c, id);
            }
        }
        Change::NewThread(in_forum) => {
            let parent = if in_forum { forum } else { general };
            g.thread(
                parent,
                &format!("topic {serial}"),
                &format!("thread{serial} opened"),
                t - 3600,
            );
        }
        Change::Reply(n) => {
            if let Some(id) = pick(&threads, n) {
                g.post(&id, "u6", &format!("reply{serial} to it"), t - 60);
            }
        }
        Change::DeleteThread(n) => {
            if let Some(id) = pick(&threads, n) {
                g.delete_thread(&id);
            }
        }
    }
}

fn property_config(
    dir: &std::path::Path,
    store: &str,
    server: &DiscordServer,
    chroma: &ChromaServer,
    provider: &FakeProvider,
    collection: &str,
) -> std::path::PathBuf {
    write_config(
        dir,
        store,
        &source(server),
        Some(&provider.base_url()),
        chroma,
        collection,
    )
}

/// After every incremental `kass run` over a generated sequence of messages posted, edited
/// and deleted, threads and forum posts started, replied to and deleted, what Chroma holds of
/// the source is exactly what a from-scratch `kass fetch` of the guild as it is now would
/// write, chunk id for chunk id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_leave_chroma_equal_to_a_fresh_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2,
        max_shrink_iters: 0,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let case = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&prop::collection::vec(change(), 4..7), |changes| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let work = tempfile::tempdir().unwrap();
                let made = guild();
                let (general, forum) = (made.general.clone(), made.forum.clone());
                let server = DiscordServer::start(made.guild, TOKEN).await;
                let collection = format!("discord-incremental-{case}");
                chroma_follows_the_source(
                    SECRET,
                    &chroma,
                    "discord",
                    &collection,
                    work.path(),
                    changes,
                    |change, serial| server.with(|g| apply(g, &general, &forum, change, serial)),
                    |store, collection| {
                        property_config(work.path(), store, &server, &chroma, &provider, collection)
                    },
                )
                .await
            })
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

//! The `backlog` source through the binaries, against the local Backlog API v2 server
//! (`sources/tests/support/backlog_api.rs`), a real Chroma and the local MiniLM model: a
//! phrase that occurs only in a comment finds its issue, an incremental run after a deleted
//! comment and a deleted issue leaves neither in Chroma, and the API key (echoed back by the
//! server in a 403's body) never appears in any output; the fetcher Lambda reads the space
//! through the Runtime API with the key only in Secrets Manager (moto), the embedder half
//! embeds what it wrote from the S3 events, and the key is in no log, response, batch or
//! state; after generated sequences of changes, each followed by `kass run`, Chroma holds
//! exactly the chunks a fresh `kass fetch` writes.

mod support;

#[path = "support/api_source.rs"]
mod api_source;
#[path = "../sources/tests/support/backlog_api.rs"]
mod backlog_api;
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
use backlog_api::{BacklogServer, Space};
use fake_provider::{Api, FakeOptions, FakeProvider};
use kass_pipeline::store::ObjectStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::ChromaServer;

/// Seven characters: below the global redactor's minimum (8), so only the source's own
/// masking of the query-string key keeps it out of the output.
const KEY: &str = "bK3y9Zq";
const SECRET: Secret = Secret {
    env: "KASS_BACKLOG_BINARY_TEST_KEY",
    value: KEY,
};
const APP: &str = "APP";

fn space() -> Space {
    let mut b = Space::default();
    b.add_project(APP, "markdown");
    let build = b.open(APP, "Nightly build fails", "The arm64 job is red.");
    b.comment(
        APP,
        build,
        "bo",
        "The runner ran out of disk space while linking the release binary.",
    );
    let docs = b.open(APP, "Document the deploy", "Write down how deploys go out.");
    b.comment(APP, docs, "cy", "Deploys go out on Tuesdays.");
    b
}

/// The source's `[[sources]]` table over `projects`.
fn source(server: &BacklogServer, projects: &[&str]) -> String {
    format!(
        "[[sources]]\ntype = \"backlog\"\nname = \"backlog\"\nbase_url = \"{}\"\napi_key_env = \"{}\"\nprojects = {projects:?}\nmax_deletion_share = 1.0\n[sources.rate_limit]\nrate_scale = 1000.0\n",
        server.base_url(),
        SECRET.env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phrase_only_in_a_comment_finds_its_issue_and_deletions_reach_chroma() {
    let mut b = space();
    // A project the key may not read: its 403 body quotes the key.
    b.add_project("SECRET", "markdown");
    b.forbidden.push("SECRET".into());
    let server = BacklogServer::start(b, KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_config(
        dir.path(),
        "kass",
        &source(&server, &[APP, "SECRET"]),
        None,
        &chroma,
        "backlog",
    );
    let cfg = config.clone();
    let (hit, status) = tokio::task::spawn_blocking(move || {
        SECRET.run(&["run"], &cfg);
        (
            SECRET.top_hit(&cfg, "the CI machine had no free disk left"),
            SECRET.run(&["status", "--json"], &cfg),
        )
    })
    .await
    .unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let scopes = &status["sources"][0]["scopes"];
    assert_eq!(scopes["kind"], "projects", "{status}");
    assert_eq!(scopes["documents"], 2, "{status}");
    assert_eq!(hit["metadata"]["document_id"], "APP/issues/1", "{hit}");
    assert_eq!(hit["metadata"]["issue_key"], "APP-1", "{hit}");

    // The comment deleted (the issue's `updated` does not move: only the feed says so), the
    // other issue deleted.
    server.with(|b| {
        let comment = b.project_mut(APP).issues[&1].comments[0].id;
        b.delete_comment(APP, 1, comment);
        b.delete(APP, 2);
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
    assert!(texts.contains("APP/issues/1"), "{texts}");
}

/// The fetcher Lambda on its schedule reads the space with the key only in Secrets Manager;
/// the batches it writes to S3 are embedded from their S3 events into Chroma; the key is in
/// no output, no batch and no saved state. A second invocation, after a comment is deleted,
/// sends the issue again without it, resuming from the state the first one saved in S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_by_the_lambda_with_the_key_in_secrets_manager() {
    use runtime_api::Outcome;
    let server = BacklogServer::start(space(), KEY).await;
    let w = split_world::World::start(
        FakeOptions::new(Api::OpenAi),
        &format!("\n{}", source(&server, &[APP])),
    )
    .await;
    w.setup_triggers("backlog").await;
    let secret_arn = store_secret(&w, "kass/backlog", SECRET).await;

    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}\n{logs}")
    };
    assert_eq!(fetched["complete"], true, "{fetched}");
    let first = w.batch_keys("backlog").await;
    assert!(!first.is_empty(), "{fetched}");
    let state = w.store.get("_state/backlog.json").await.unwrap();
    SECRET.assert_absent(&String::from_utf8_lossy(&state), "the saved state");
    let state: Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(
        state["scopes"][APP]["documents"],
        json!(["APP/issues/1", "APP/issues/2"]),
        "{state}"
    );
    for key in &first {
        let bytes = w.store.get(key).await.unwrap();
        SECRET.assert_absent(&String::from_utf8_lossy(&bytes), key);
    }
    w.listen_until_idle().await;
    let url = w.chroma.as_ref().unwrap().url();
    let embedded = chroma_ids(&url, "split", "backlog").await;
    assert_eq!(embedded, w.chunk_ids(&first).await);
    let held = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "backlog"}, "include": ["metadatas"]}),
    )
    .await
    .unwrap();
    let documents: BTreeSet<&str> = held["metadatas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(documents, ["APP/issues/1", "APP/issues/2"].into());

    // The comment deleted: the next invocation (a new Lambda environment) resumes from the
    // saved state, learns of it from the feed and sends the issue again without it.
    server.with(|b| {
        let comment = b.project_mut(APP).issues[&1].comments[0].id;
        b.delete_comment(APP, 1, comment);
    });
    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    assert!(
        matches!(outcome, Outcome::Response(_)),
        "{outcome:?}\n{logs}"
    );
    let keys = w.batch_keys("backlog").await;
    let new: Vec<String> = keys.into_iter().filter(|k| !first.contains(k)).collect();
    assert!(!new.is_empty(), "the edited issue is sent again");
    for key in &new {
        let bytes = w.store.get(key).await.unwrap();
        SECRET.assert_absent(&String::from_utf8_lossy(&bytes), key);
    }
    w.listen_until_idle().await;
    let texts = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "backlog"}, "include": ["documents"]}),
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

/// One change to the project; `pick` chooses among what exists, modulo its count.
#[derive(Debug, Clone)]
enum Change {
    Open,
    Comment(usize),
    EditComment(usize),
    DeleteComment(usize),
    DeleteIssue(usize),
    /// Creates or edits wiki page `.0` (of 3).
    WriteWiki(usize),
    DeleteWiki(usize),
    /// Creates or edits document `.0` (of 2).
    WriteDocument(usize),
    DeleteDocument(usize),
}

fn change() -> impl Strategy<Value = Change> {
    let pick = 0..8usize;
    prop_oneof![
        Just(Change::Open),
        pick.clone().prop_map(Change::Comment),
        pick.clone().prop_map(Change::EditComment),
        pick.clone().prop_map(Change::DeleteComment),
        pick.clone().prop_map(Change::DeleteIssue),
        (0..3usize).prop_map(Change::WriteWiki),
        pick.clone().prop_map(Change::DeleteWiki),
        (0..2usize).prop_map(Change::WriteDocument),
        pick.prop_map(Change::DeleteDocument),
    ]
}

const PAGES: [&str; 3] = ["Home", "Runbooks/Deploy", "FAQ"];

/// The project of `space()` with wiki pages and a document.
fn whole_space() -> Space {
    let mut b = space();
    b.write_wiki(
        APP,
        PAGES[0],
        "Welcome. Deploys are described in the runbook.",
    );
    b.write_wiki(
        APP,
        PAGES[1],
        "# Deploy\n\nTag the release, then run the pipeline.",
    );
    b.write_document(APP, "doc0", "Design", "The design of the app.");
    b
}

fn pick<T: Clone>(list: &[T], n: usize) -> Option<T> {
    (!list.is_empty()).then(|| list[n % list.len()].clone())
}

fn apply(b: &mut Space, change: &Change, serial: usize) {
    let issues: Vec<u64> = b.project_mut(APP).issues.keys().copied().collect();
    match *change {
        Change::Open => {
            b.open(
                APP,
                &format!("Issue {serial}"),
                &format!("Opened at step {serial}."),
            );
        }
        Change::Comment(n) => {
            if let Some(issue) = pick(&issues, n) {
                b.comment(APP, issue, "dee", &format!("comment{serial} on it"));
            }
        }
        Change::EditComment(n) | Change::DeleteComment(n) => {
            let Some(issue) = pick(&issues, n) else {
                return;
            };
            let comments: Vec<u64> = b.project_mut(APP).issues[&issue]
                .comments
                .iter()
                .map(|c| c.id)
                .collect();
            let Some(comment) = pick(&comments, n) else {
                return;
            };
            if matches!(change, Change::EditComment(_)) {
                b.edit_comment(APP, issue, comment, &format!("edited{serial} comment"));
            } else {
                b.delete_comment(APP, issue, comment);
            }
        }
        Change::DeleteIssue(n) => {
            if let Some(issue) = pick(&issues, n) {
                b.delete(APP, issue);
            }
        }
        Change::WriteWiki(n) => {
            b.write_wiki(APP, PAGES[n], &format!("Page {n}, version {serial}."));
        }
        Change::DeleteWiki(n) => {
            let pages: Vec<u64> = b.project_mut(APP).wikis.keys().copied().collect();
            if let Some(id) = pick(&pages, n) {
                b.delete_wiki(APP, id);
            }
        }
        Change::WriteDocument(n) => {
            b.write_document(
                APP,
                &format!("doc{n}"),
                &format!("Document {n}"),
                &format!("Document {n}, version {serial}."),
            );
        }
        Change::DeleteDocument(n) => {
            let documents: Vec<String> = b.project_mut(APP).documents.keys().cloned().collect();
            if let Some(id) = pick(&documents, n) {
                b.delete_document(APP, &id);
            }
        }
    }
}

fn property_config(
    dir: &std::path::Path,
    store: &str,
    server: &BacklogServer,
    chroma: &ChromaServer,
    provider: &FakeProvider,
    collection: &str,
) -> std::path::PathBuf {
    write_config(
        dir,
        store,
        &source(server, &[APP]),
        Some(&provider.base_url()),
        chroma,
        collection,
    )
}

/// After every incremental `kass run` over a generated sequence of changes to issues,
/// comments, wiki pages and documents, what Chroma holds of the source is exactly what a
/// from-scratch `kass fetch` of the space as it is now would write, chunk id for chunk id.
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
                let server = BacklogServer::start(whole_space(), KEY).await;
                let collection = format!("backlog-incremental-{case}");
                chroma_follows_the_source(
                    SECRET,
                    &chroma,
                    "backlog",
                    &collection,
                    work.path(),
                    changes,
                    |change, serial| server.with(|b| apply(b, change, serial)),
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

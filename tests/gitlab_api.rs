//! The `gitlab` source through the `kass` binary, against the local GitLab REST API server
//! (`sources/tests/support/gitlab_rest_api.rs`), a real Chroma and the local MiniLM model:
//! a phrase that occurs only in a comment finds its issue, an incremental run after a deleted
//! note and a deleted issue leaves neither in Chroma, and the token never appears in any
//! output; the fetcher Lambda reads GitLab through the Runtime API with the token only in
//! Secrets Manager (moto), and the embedder half embeds what it wrote from the S3 events.

mod support;

#[path = "support/api_source.rs"]
mod api_source;
#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;
#[path = "../sources/tests/support/gitlab_rest_api.rs"]
mod gitlab_rest_api;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/split_world.rs"]
mod split_world;

use api_source::{
    chroma_follows_the_source, chroma_ids, invoke_fetcher, store_secret, write_config, Secret,
};
use fake_provider::{Api, FakeOptions, FakeProvider};
use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::store::ObjectStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::ChromaServer;

const TOKEN: &str = "glpat-kass-binary-test-token-9876543210";
const TOKEN_ENV: &str = "KASS_GITLAB_BINARY_TEST_TOKEN";
const SECRET: Secret = Secret {
    env: TOKEN_ENV,
    value: TOKEN,
};

fn project() -> Instance {
    let mut gl = Instance::default();
    gl.add_project(7, "group/app");
    let build = gl.open(
        "group/app",
        false,
        "Nightly build fails",
        "The arm64 job is red.",
    );
    gl.comment(
        "group/app",
        false,
        build,
        "bo",
        "The runner ran out of disk space while linking the release binary.",
    );
    let docs = gl.open(
        "group/app",
        false,
        "Document the deploy",
        "Write down how deploys go out.",
    );
    gl.comment(
        "group/app",
        false,
        docs,
        "cy",
        "Deploys go out on Tuesdays.",
    );
    gl
}

/// The project's `[[sources]]` table (with `include`, if given).
fn source(server: &GitlabServer, include: &str) -> String {
    format!(
        "[[sources]]\ntype = \"gitlab\"\nname = \"gitlab\"\nbase_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\nprojects = [\"group/app\"]\n{include}max_deletion_share = 1.0\n[sources.rate_limit]\nrate_scale = 1000.0\n",
        server.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phrase_only_in_a_comment_finds_its_issue_and_deletions_reach_chroma() {
    let server = GitlabServer::start(project(), TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = write_config(
        dir.path(),
        "kass",
        &source(&server, ""),
        None,
        &chroma,
        "gitlab",
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
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let scopes = &status["sources"][0]["scopes"];
    assert_eq!(scopes["kind"], "projects", "{status}");
    assert_eq!(scopes["scopes"], 1, "{status}");
    assert_eq!(scopes["in_backlog"], 0, "{status}");
    assert_eq!(scopes["documents"], 2, "{status}");
    assert_eq!(
        hit["metadata"]["document_id"], "group/app/issues/1",
        "{hit}"
    );
    assert_eq!(hit["metadata"]["state"], "opened", "{hit}");

    // The comment deleted (the issue's updated_at does not move), the other issue deleted.
    let note = server.with(|gl| gl.project_mut("group/app").issues[&1].notes[0].id);
    server.with(|gl| {
        gl.delete_note("group/app", false, 1, note);
        gl.delete("group/app", false, 2);
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
    assert!(texts.contains("group/app/issues/1"), "{texts}");
}

/// The fetcher Lambda on its schedule reads the project with the token only in Secrets Manager;
/// the batches it writes to S3 are embedded from their S3 events into Chroma; the token is in
/// no output, no batch and no saved state. A second invocation, after a note is deleted, sends
/// the issue again without it, resuming from the state the first one saved in S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_by_the_lambda_with_the_token_in_secrets_manager() {
    use runtime_api::Outcome;
    let server = GitlabServer::start(project(), TOKEN).await;
    let w = split_world::World::start(
        FakeOptions::new(Api::OpenAi),
        &format!("\n{}", source(&server, "")),
    )
    .await;
    w.setup_triggers("gitlab").await;
    let secret_arn = store_secret(&w, "kass/gitlab", SECRET).await;

    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}\n{logs}")
    };
    assert_eq!(fetched["complete"], true, "{fetched}");
    let first = w.batch_keys("gitlab").await;
    assert!(!first.is_empty(), "{fetched}");
    let state = w.store.get("_state/gitlab.json").await.unwrap();
    let state: Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(
        state["scopes"]["group/app"]["documents"],
        json!(["group/app/issues/1", "group/app/issues/2"]),
        "{state}"
    );
    for key in &first {
        let bytes = w.store.get(key).await.unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(TOKEN), "{key}");
    }
    w.listen_until_idle().await;
    let url = w.chroma.as_ref().unwrap().url();
    let embedded = chroma_ids(&url, "split", "gitlab").await;
    assert_eq!(embedded, w.chunk_ids(&first).await);
    let held = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "gitlab"}, "include": ["metadatas"]}),
    )
    .await
    .unwrap();
    let documents: std::collections::BTreeSet<&str> = held["metadatas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        documents,
        ["group/app/issues/1", "group/app/issues/2"].into()
    );

    // The comment deleted: the next invocation (a new Lambda environment) resumes from the
    // saved state and sends the issue again without it.
    let note = server.with(|gl| gl.project_mut("group/app").issues[&1].notes[0].id);
    server.with(|gl| gl.delete_note("group/app", false, 1, note));
    let (outcome, logs) = invoke_fetcher(&w, SECRET, &secret_arn).await;
    assert!(
        matches!(outcome, Outcome::Response(_)),
        "{outcome:?}\n{logs}"
    );
    let keys = w.batch_keys("gitlab").await;
    let new: Vec<String> = keys.into_iter().filter(|k| !first.contains(k)).collect();
    assert!(!new.is_empty(), "the edited issue is sent again");
    w.listen_until_idle().await;
    let texts = support::chroma_get(
        &url,
        "split",
        json!({"where": {"source": "gitlab"}, "include": ["documents"]}),
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
    EditNote(usize),
    DeleteNote(usize),
    Close(usize),
    DeleteIssue(usize),
    WritePage(usize),
    DeletePage(usize),
    /// A commit writing file `.0` (of 3) or, with `.1`, removing it.
    Commit(usize, bool),
}

fn change() -> impl Strategy<Value = Change> {
    let pick = 0..8usize;
    prop_oneof![
        Just(Change::Open),
        pick.clone().prop_map(Change::Comment),
        pick.clone().prop_map(Change::EditNote),
        pick.clone().prop_map(Change::DeleteNote),
        pick.clone().prop_map(Change::Close),
        pick.clone().prop_map(Change::DeleteIssue),
        (0..3usize).prop_map(Change::WritePage),
        (0..3usize).prop_map(Change::DeletePage),
        (0..3usize, any::<bool>()).prop_map(|(f, gone)| Change::Commit(f, gone)),
    ]
}

const APP: &str = "group/app";
const FILES: [&str; 3] = ["src/lib.rs", "README.md", "docs/deploy.md"];
const PAGES: [&str; 3] = ["home", "runbooks/deploy", "faq"];

/// The project of `project()` with a wiki and a repository.
fn whole_project() -> Instance {
    let mut gl = project();
    gl.write_page(
        APP,
        "home",
        "Welcome. Deploys are described in the runbook.",
    );
    gl.write_page(
        APP,
        "runbooks/deploy",
        "# Deploy\n\nTag the release, then run the pipeline.",
    );
    gl.push(
        APP,
        "main",
        &[
            (
                "src/lib.rs",
                Some(b"/// Adds.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n".as_slice()),
            ),
            (
                "README.md",
                Some(b"# App\n\nThe app adds numbers.\n".as_slice()),
            ),
            (
                "logo.png",
                Some(b"\x89PNG\r\n\x1a\n\0\0\0binary".as_slice()),
            ),
        ],
    );
    gl
}

fn apply(gl: &mut Instance, change: &Change, serial: usize) {
    let issues: Vec<u64> = gl.project_mut(APP).issues.keys().copied().collect();
    let pick = |n: usize| issues.get(n % issues.len().max(1)).copied();
    match change {
        Change::Open => {
            gl.open(
                APP,
                false,
                &format!("Issue {serial}"),
                &format!("Opened at step {serial}."),
            );
        }
        Change::Comment(n) => {
            if let Some(iid) = pick(*n) {
                gl.comment(APP, false, iid, "dee", &format!("comment{serial} on it"));
            }
        }
        Change::EditNote(n) | Change::DeleteNote(n) => {
            let Some(iid) = pick(*n) else { return };
            let Some(note) = gl.project_mut(APP).issues[&iid].notes.first().map(|n| n.id) else {
                return;
            };
            if matches!(change, Change::EditNote(_)) {
                gl.edit_note(APP, false, iid, note, &format!("edited{serial} comment"));
            } else {
                gl.delete_note(APP, false, iid, note);
            }
        }
        Change::Close(n) => {
            if let Some(iid) = pick(*n) {
                gl.close(APP, false, iid);
            }
        }
        Change::DeleteIssue(n) => {
            if let Some(iid) = pick(*n) {
                gl.delete(APP, false, iid);
            }
        }
        Change::WritePage(n) => {
            gl.write_page(APP, PAGES[*n], &format!("Page {n}, version {serial}."));
        }
        Change::DeletePage(n) => gl.delete_page(APP, PAGES[*n]),
        Change::Commit(n, gone) => {
            let text = format!("# {}\n\nVersion {serial} of this file.\n", FILES[*n]);
            let content = (!gone).then_some(text.as_bytes());
            gl.push(APP, "main", &[(FILES[*n], content)]);
        }
    }
}

fn property_config(
    dir: &std::path::Path,
    store: &str,
    server: &GitlabServer,
    chroma: &ChromaServer,
    provider: &FakeProvider,
    collection: &str,
) -> std::path::PathBuf {
    let include = "include = [\"issues\", \"merge_requests\", \"wiki\", \"code\"]\n";
    write_config(
        dir,
        store,
        &source(server, include),
        Some(&provider.base_url()),
        chroma,
        collection,
    )
}

/// After every incremental `kass run` over a generated sequence of changes to issues, notes,
/// wiki pages and files, what Chroma holds of the source is exactly what a from-scratch
/// `kass fetch` of the project as it is now would write, chunk id for chunk id.
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
                let server = GitlabServer::start(whole_project(), TOKEN).await;
                let collection = format!("gitlab-incremental-{case}");
                chroma_follows_the_source(
                    SECRET,
                    &chroma,
                    "gitlab",
                    &collection,
                    work.path(),
                    changes,
                    |change, serial| server.with(|gl| apply(gl, change, serial)),
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

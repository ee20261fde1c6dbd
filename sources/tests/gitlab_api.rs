//! The `gitlab` source against the local GitLab REST API server
//! (`support/gitlab_rest_api.rs`): incremental runs equal a fresh run after generated
//! sequences of changes, a deleted note is noticed though it does not touch `updated_at`,
//! only GitLab's 404 deletes, unchanged issues cost no request, the guard withholds a mass
//! deletion, and the token is refused naming its variable, never itself; groups, wikis and
//! repository files: incremental equals fresh after generated changes, an unchanged commit
//! costs no tree request, a run stopped mid-group resumes with its leftover projects.

mod common;
#[path = "support/gitlab_rest_api.rs"]
mod gitlab_rest_api;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::store::LocalStore;
use kass_pipeline::RawRecord;
use kass_sources::cursor::Cursor;
use kass_sources::gitlab_api::GitlabApiConfig;
use kass_sources::{BuildSource, SourceDeps};
use proptest::prelude::*;

const TOKEN: &str = "glpat-kass-gitlab-test-token-0123456789";
const APP: &str = "group/app";

fn token_env() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let var = format!(
        "KASS_TEST_GITLAB_TOKEN_{}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    std::env::set_var(&var, TOKEN);
    var
}

fn config(server: &GitlabServer, projects: &[&str]) -> GitlabApiConfig {
    let text = format!(
        "name = \"gitlab\"\nbase_url = \"{}\"\ntoken_env = \"{}\"\nprojects = {:?}\nmax_deletion_share = 1.0\nnotes_lookback_days = 0\n[rate_limit]\nrate_scale = 1000.0\n[retry]\ninitial_backoff_ms = 20\n",
        server.base_url(),
        token_env(),
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
    config: GitlabApiConfig,
    _dir: tempfile::TempDir,
    store: LocalStore,
}

impl Synced {
    fn new(config: GitlabApiConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        Self {
            config,
            _dir: dir,
            store,
        }
    }

    async fn run(&self) -> Fetched {
        self.run_with(false).await.expect("the source failed")
    }

    /// A run that requests shutdown once `stop_after` documents came out.
    async fn run_until(&self, stop_after: usize) -> Fetched {
        self.run_stopping(false, Some(stop_after))
            .await
            .expect("the source failed")
    }

    async fn run_with(&self, allow_deletions: bool) -> Result<Fetched, kass_pipeline::FatalError> {
        self.run_stopping(allow_deletions, None).await
    }

    async fn run_stopping(
        &self,
        allow_deletions: bool,
        stop_after: Option<usize>,
    ) -> Result<Fetched, kass_pipeline::FatalError> {
        let cursor = Arc::new(Cursor::load(&self.store, "gitlab", "s").await.unwrap());
        let outbox = TombstoneOutbox::default();
        let source = self.config.clone().build_with(SourceDeps {
            cursor: Some(cursor.clone()),
            tombstones: Some(outbox.clone()),
            allow_deletions,
        })?;
        let run = common::try_run_source(source, "gitlab", stop_after).await?;
        cursor.save(&self.store, "gitlab").await.unwrap();
        let mut fetched = Fetched::default();
        for record in run.records {
            let RawRecord::Document(doc) = record else {
                panic!("gitlab sends documents")
            };
            let mut doc = doc;
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

fn workspace() -> Instance {
    let mut gl = Instance::default();
    gl.add_project(7, APP);
    let one = gl.open(
        APP,
        false,
        "Build is red",
        "The nightly build fails on arm64.",
    );
    gl.comment(APP, false, one, "bo", "Looks like the linker.");
    gl.note(APP, false, one, "bo", "added label ~bug", true, None);
    let mr = gl.open(APP, true, "Fix the linker flags", "Closes #1.");
    gl.note(
        APP,
        true,
        mr,
        "cy",
        "This flag is only for x86.",
        false,
        Some(("build.rs".into(), 12)),
    );
    gl
}

#[derive(Debug, Clone)]
enum Change {
    Open { mr: bool },
    Comment { mr: bool, pick: usize },
    EditNote { mr: bool, pick: usize },
    DeleteNote { mr: bool, pick: usize },
    Close { mr: bool, pick: usize },
    Delete { mr: bool, pick: usize },
}

fn change() -> impl Strategy<Value = Change> {
    let mr = any::<bool>();
    prop_oneof![
        2 => mr.prop_map(|mr| Change::Open { mr }),
        3 => (mr, 0..100usize).prop_map(|(mr, pick)| Change::Comment { mr, pick }),
        2 => (mr, 0..100usize).prop_map(|(mr, pick)| Change::EditNote { mr, pick }),
        2 => (mr, 0..100usize).prop_map(|(mr, pick)| Change::DeleteNote { mr, pick }),
        1 => (mr, 0..100usize).prop_map(|(mr, pick)| Change::Close { mr, pick }),
        1 => (mr, 0..100usize).prop_map(|(mr, pick)| Change::Delete { mr, pick }),
    ]
}

fn apply(gl: &mut Instance, change: &Change, serial: usize) {
    let items = |gl: &mut Instance, mr: bool| -> Vec<u64> {
        let p = gl.project_mut(APP);
        let items = if mr { &p.merge_requests } else { &p.issues };
        items.keys().copied().collect()
    };
    let pick = |list: &[u64], i: usize| (!list.is_empty()).then(|| list[i % list.len()]);
    match *change {
        Change::Open { mr } => {
            gl.open(
                APP,
                mr,
                &format!("item {serial}"),
                &format!("body {serial}"),
            );
        }
        Change::Comment { mr, pick: i } => {
            if let Some(iid) = pick(&items(gl, mr), i) {
                gl.comment(APP, mr, iid, "dee", &format!("comment {serial}"));
            }
        }
        Change::EditNote { mr, pick: i } | Change::DeleteNote { mr, pick: i } => {
            if let Some(iid) = pick(&items(gl, mr), i) {
                let p = gl.project_mut(APP);
                let items = if mr { &p.merge_requests } else { &p.issues };
                let notes: Vec<u64> = items[&iid].notes.iter().map(|n| n.id).collect();
                if let Some(note) = pick(&notes, i) {
                    if matches!(change, Change::EditNote { .. }) {
                        gl.edit_note(APP, mr, iid, note, &format!("edited {serial}"));
                    } else {
                        gl.delete_note(APP, mr, iid, note);
                    }
                }
            }
        }
        Change::Close { mr, pick: i } => {
            if let Some(iid) = pick(&items(gl, mr), i) {
                gl.close(APP, mr, iid);
            }
        }
        Change::Delete { mr, pick: i } => {
            if let Some(iid) = pick(&items(gl, mr), i) {
                gl.delete(APP, mr, iid);
            }
        }
    }
}

/// After every change and incremental run, what the runs sent so far (documents replaced,
/// tombstones applied) equals what a fresh run sends.
async fn incremental_equals_full(changes: Vec<Change>) -> Result<(), TestCaseError> {
    let server = GitlabServer::start(workspace(), TOKEN).await;
    let live = Synced::new(config(&server, &[APP]));
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut steps = vec![None];
    steps.extend(changes.into_iter().map(Some));
    for (serial, change) in steps.into_iter().enumerate() {
        if let Some(change) = &change {
            server.with(|gl| apply(gl, change, serial));
        }
        let run = live.run().await;
        for id in &run.gone {
            held.remove(id);
        }
        held.extend(run.documents);
        let fresh = Synced::new(config(&server, &[APP])).run().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_note_is_noticed_though_the_issue_s_updated_at_does_not_move() {
    let server = GitlabServer::start(workspace(), TOKEN).await;
    let live = Synced::new(config(&server, &[APP]));
    let first = live.run().await;
    let issue = &first.documents["group/app/issues/1"];
    assert!(issue.contains("Looks like the linker."), "{issue}");
    assert!(
        !issue.contains("added label"),
        "system notes are left out by default: {issue}"
    );
    let mr = &first.documents["group/app/merge_requests/1"];
    assert!(
        mr.contains("(on build.rs line 12) This flag is only for x86."),
        "{mr}"
    );

    // Nothing changed: no document is read or sent again.
    server.clear_log();
    let quiet = live.run().await;
    assert!(quiet.documents.is_empty(), "{:?}", quiet.documents.keys());
    let routes: BTreeSet<String> = server.log().into_iter().map(|(r, _)| r).collect();
    assert!(
        !routes.contains("issue_notes") && !routes.contains("merge_request_notes"),
        "an unchanged issue cost a notes read: {routes:?}"
    );

    let (before, note) = server.with(|gl| {
        let issue = &gl.project_mut(APP).issues[&1];
        (issue.updated_at, issue.notes[0].id)
    });
    server.with(|gl| gl.delete_note(APP, false, 1, note));
    assert_eq!(
        server.with(|gl| gl.project_mut(APP).issues[&1].updated_at),
        before
    );
    let after = live.run().await;
    let issue = after
        .documents
        .get("group/app/issues/1")
        .expect("the issue is sent again");
    assert!(!issue.contains("Looks like the linker."), "{issue}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_gitlab_s_404_deletes_and_the_guard_withholds_a_mass_deletion() {
    let server = GitlabServer::start(workspace(), TOKEN).await;
    server.with(|gl| {
        for i in 0..8 {
            gl.open(APP, false, &format!("extra {i}"), "x");
        }
    });
    let mut cfg = config(&server, &[APP]);
    cfg.max_deletion_share = 0.2;
    let live = Synced::new(cfg);
    live.run().await;
    server.with(|gl| gl.delete(APP, false, 2));
    let one = live.run().await;
    assert_eq!(one.gone, BTreeSet::from(["group/app/issues/2".to_string()]));
    let asked: Vec<String> = server
        .log()
        .into_iter()
        .filter(|(r, _)| r == "issue")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        asked,
        ["projects/7/issues/2"],
        "an issue missing from the listing is asked for alone before it is deleted"
    );

    server.with(|gl| {
        for iid in 3..9 {
            gl.delete(APP, false, iid);
        }
    });
    let withheld = live.run().await;
    assert!(withheld.gone.is_empty(), "{:?}", withheld.gone);
    let allowed = live.run_with(true).await.unwrap();
    assert_eq!(allowed.gone.len(), 6, "{:?}", allowed.gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_source_naming_its_variable_and_a_hidden_project_is_skipped() {
    let server = GitlabServer::start(workspace(), TOKEN).await;
    server.with(|gl| {
        gl.add_project(8, "group/secret");
        gl.forbidden.push("group/secret".into());
    });
    let live = Synced::new(config(&server, &["group/secret", "group/missing", APP]));
    let run = live.run().await;
    assert!(run.documents.contains_key("group/app/issues/1"));

    let mut bad = config(&server, &[APP]);
    let var = format!("{}_BAD", bad.token_env);
    std::env::set_var(&var, "glpat-wrong-token");
    bad.token_env = var.clone();
    let error = Synced::new(bad)
        .run_with(false)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&var), "{error}");
    assert!(
        !error.contains("glpat-wrong-token") && !error.contains(TOKEN),
        "{error}"
    );
}

// ------------------------------------------------------------------------------------------
// The project export
// ------------------------------------------------------------------------------------------

use kass_sources::gitlab_export::GitlabExportConfig;

/// Writes an export of `gl`'s project `APP` as GitLab 13.5 writes one (the real sample in
/// `../shared/data/gitlab-export-sample` has these quirks): notes newest first with the text in
/// `note`, labels under `label_links[].label.title`, the issue's author only by id, system
/// notes, `\r\n` line ends, a diff note's `position`, fields kass does not read.
fn write_export(gl: &mut Instance, dir: &std::path::Path) {
    let tree = dir.join("tree/project");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        dir.join("tree/project.json"),
        r#"{"description": "x", "visibility_level": 20}"#,
    )
    .unwrap();
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    for (file, mr) in [("issues.ndjson", false), ("merge_requests.ndjson", true)] {
        let project = gl.project_mut(APP);
        let items = if mr {
            &project.merge_requests
        } else {
            &project.issues
        };
        let mut lines = String::new();
        for i in items.values() {
            let notes: Vec<serde_json::Value> = i
                .notes
                .iter()
                .rev()
                .map(|n| {
                    let mut v = serde_json::json!({
                        "id": n.id, "note": n.body, "noteable_type": if mr { "MergeRequest" } else { "Issue" },
                        "author_id": 42, "author": {"name": n.author}, "created_at": time(n.created_at),
                        "updated_at": time(n.created_at), "system": n.system, "award_emoji": [], "events": [],
                    });
                    if let Some((path, line)) = &n.position {
                        v["type"] = "DiffNote".into();
                        v["position"] = serde_json::json!({"new_path": path, "new_line": line, "old_path": path});
                    }
                    v
                })
                .collect();
            let line = serde_json::json!({
                "id": 900 + i.iid, "iid": i.iid, "title": i.title, "description": i.description,
                "state": i.state, "author_id": 42, "project_id": 7,
                "created_at": time(i.created_at), "updated_at": time(i.updated_at),
                "label_links": i.labels.iter().map(|l| serde_json::json!({"label": {"title": l, "color": "#fff"}})).collect::<Vec<_>>(),
                "notes": notes, "events": [], "timelogs": [], "relative_position": 1073742323,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        std::fs::write(tree.join(file), lines).unwrap();
    }
}

/// The parts of a document that make its chunks (and so its chunk ids): id, title, text and
/// messages; not the metadata the export lacks (the issue's author, its URL).
fn chunked_parts(json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    serde_json::json!([v["id"], v["title"], v["text"], v["messages"], v["kind"]])
}

async fn from_export(dir: &std::path::Path) -> (BTreeMap<String, String>, usize) {
    let config: GitlabExportConfig = toml::from_str(&format!(
        "name = \"gitlab\"\npath = \"{}\"\nproject = \"{APP}\"\n",
        dir.display()
    ))
    .unwrap();
    let run = common::run_source(config.build().unwrap(), "gitlab_export").await;
    let documents = run
        .records
        .into_iter()
        .map(|r| match r {
            RawRecord::Document(d) => (d.id.clone(), serde_json::to_string(&d).unwrap()),
            RawRecord::Chat(_) => panic!("documents only"),
        })
        .collect();
    (documents, run.dead_letters.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_and_the_api_give_the_same_documents() {
    let mut gl = workspace();
    let iid = gl.open(APP, false, "Windows paths", "Line one\r\nline two");
    gl.comment(APP, false, iid, "dee", "Use forward slashes.\r\nAlways.");
    gl.close(APP, false, iid);
    let dir = tempfile::tempdir().unwrap();
    write_export(&mut gl, dir.path());
    let server = GitlabServer::start(gl, TOKEN).await;
    let api = Synced::new(config(&server, &[APP])).run().await.documents;
    let (export, dead) = from_export(dir.path()).await;
    assert_eq!(dead, 0);
    assert_eq!(api.len(), 3);
    let parts = |docs: &BTreeMap<String, String>| -> BTreeMap<String, serde_json::Value> {
        docs.iter()
            .map(|(k, v)| (k.clone(), chunked_parts(v)))
            .collect()
    };
    assert_eq!(parts(&export), parts(&api));
    let closed = &export["group/app/issues/2"];
    assert!(closed.contains("\"state\":\"closed\""), "{closed}");
}

#[tokio::test]
async fn a_line_the_export_cannot_read_is_dead_lettered_naming_the_file_and_line() {
    let mut gl = workspace();
    let dir = tempfile::tempdir().unwrap();
    write_export(&mut gl, dir.path());
    let issues = dir.path().join("tree/project/issues.ndjson");
    let mut text = std::fs::read_to_string(&issues).unwrap();
    text.push_str("{\"iid\": \"not a number\"}\n");
    std::fs::write(&issues, text).unwrap();
    let config: GitlabExportConfig = toml::from_str(&format!(
        "path = \"{}\"\nproject = \"{APP}\"\n",
        dir.path().display()
    ))
    .unwrap();
    let run = common::run_source(config.build().unwrap(), "gitlab_export").await;
    assert_eq!(run.records.len(), 2, "the readable issue and merge request");
    let [(_, letter)] = run.dead_letters.as_slice() else {
        panic!("one letter: {:?}", run.dead_letters)
    };
    let error = &letter.reason;
    assert!(error.contains("issues.ndjson line 2"), "{error}");
}

/// The real GitLab 13.5 export in `../shared/data` (6 issues with 11 notes, 3 merge requests
/// with 10): every issue and merge request becomes a document, none is lost.
#[tokio::test]
async fn the_real_export_sample_reads_whole() {
    let Some(dir) = common::test_data::shared_data("gitlab-export-sample") else {
        return;
    };
    let (documents, dead) = from_export(&dir).await;
    assert_eq!(dead, 0);
    let issues = documents.keys().filter(|k| k.contains("/issues/")).count();
    let mrs = documents
        .keys()
        .filter(|k| k.contains("/merge_requests/"))
        .count();
    assert_eq!((issues, mrs), (6, 3), "{:?}", documents.keys());
    for (id, doc) in &documents {
        let v: serde_json::Value = serde_json::from_str(doc).unwrap();
        assert!(!v["title"].as_str().unwrap_or_default().is_empty(), "{id}");
        assert!(
            v["messages"].as_array().is_none_or(|m| m
                .iter()
                .all(|m| !m["text"].as_str().unwrap().starts_with("mentioned in"))),
            "system notes are left out: {id}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Groups, wikis and code
// ------------------------------------------------------------------------------------------

const LIB: &str = "group/sub/lib";
const OLD: &str = "group/old";

/// `workspace()` with a group holding `APP`, a subgroup's project `LIB` and an archived `OLD`,
/// a project outside it, wikis and repositories (a binary file, one over the size cap).
fn grouped_workspace() -> Instance {
    let mut gl = workspace();
    gl.add_group(1, "group");
    gl.add_group(2, "group/sub");
    gl.add_project(9, LIB);
    gl.add_project(10, OLD);
    gl.project_mut(OLD).archived = true;
    gl.add_project(11, "other/tool");
    gl.write_page(APP, "home", "# Home\n\nStart with the build guide.");
    gl.write_page(APP, "guides/build", "Run `make` on arm64.");
    gl.write_page(LIB, "home", "The lib's wiki.");
    gl.write_page("other/tool", "home", "Not in the group.");
    gl.push(
        APP,
        "main",
        &[
            ("README.md", Some(b"# App\n\nBuilds things.\n".as_slice())),
            (
                "src/main.rs",
                Some(b"fn main() {\n    println!(\"hi\");\n}\n"),
            ),
            ("logo.png", Some(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
            ("data/big.txt", Some(&[b'x'; 5000])),
        ],
    );
    gl.push(
        LIB,
        "main",
        &[("lib.py", Some(b"def f():\n    return 1\n"))],
    );
    gl.push(OLD, "main", &[("notes.txt", Some(b"archived but kept"))]);
    // The files the generated commits change, there from the start in both projects.
    for project in [APP, LIB] {
        for i in 0..5 {
            let name = format!("src/f{i}.rs");
            gl.push(
                project,
                "main",
                &[(name.as_str(), Some(b"fn f() {}\n".as_slice()))],
            );
        }
    }
    gl
}

fn grouped_config(server: &GitlabServer) -> GitlabApiConfig {
    let mut config = config(server, &[]);
    config.groups = vec!["group".to_string()];
    config.include = ["issues", "merge_requests", "wiki", "code"]
        .map(String::from)
        .to_vec();
    config.max_code_file_bytes = 4096;
    config
}

#[derive(Debug, Clone)]
enum GroupChange {
    Issue(Change),
    WritePage {
        lib: bool,
        page: usize,
    },
    DeletePage {
        lib: bool,
        page: usize,
    },
    Commit {
        lib: bool,
        file: usize,
        what: u8,
    },
    /// `LIB` leaves the group (moved to another namespace), or comes back.
    Transfer,
    /// A new project in the subgroup, with a page and a file.
    NewProject,
}

fn group_change() -> impl Strategy<Value = GroupChange> {
    let lib = any::<bool>();
    prop_oneof![
        2 => change().prop_map(GroupChange::Issue),
        3 => (lib, 0..4usize).prop_map(|(lib, page)| GroupChange::WritePage { lib, page }),
        2 => (lib, 0..4usize).prop_map(|(lib, page)| GroupChange::DeletePage { lib, page }),
        4 => (lib, 0..5usize, 0..4u8).prop_map(|(lib, file, what)| GroupChange::Commit { lib, file, what }),
        1 => Just(GroupChange::Transfer),
        1 => Just(GroupChange::NewProject),
    ]
}

fn apply_group(gl: &mut Instance, change: &GroupChange, serial: usize) {
    let lib_path = if gl.projects.iter().any(|p| p.path == LIB) {
        LIB
    } else {
        "elsewhere/lib"
    };
    let project = |lib: bool| if lib { lib_path } else { APP };
    match change {
        GroupChange::Issue(change) => apply(gl, change, serial),
        GroupChange::WritePage { lib, page } => gl.write_page(
            project(*lib),
            &format!("p{page}"),
            &format!("page {serial}"),
        ),
        GroupChange::DeletePage { lib, page } => {
            gl.delete_page(project(*lib), &format!("p{page}"));
            if *page == 0 {
                gl.delete_page(project(*lib), "home");
            }
        }
        GroupChange::Commit { lib, file, what } => {
            let name = format!("src/f{file}.rs");
            let text = format!("// {serial}\nfn f() {{}}\n");
            let content: Option<Vec<u8>> = match what {
                0 => None,
                1 => Some(b"\0binary\0".to_vec()),
                2 => Some(vec![b'y'; 5000]),
                _ => Some(text.into_bytes()),
            };
            gl.push(
                project(*lib),
                "main",
                &[(name.as_str(), content.as_deref())],
            );
        }
        GroupChange::Transfer => {
            let other = if lib_path == LIB {
                "elsewhere/lib"
            } else {
                LIB
            };
            gl.transfer(lib_path, other);
        }
        GroupChange::NewProject => {
            let id = 100 + serial as u64;
            let path = format!("group/sub/new{serial}");
            gl.add_project(id, &path);
            gl.write_page(&path, "home", &format!("new {serial}"));
            gl.push(&path, "main", &[("a.md", Some(b"# A\n"))]);
        }
    }
}

/// After every change and incremental run, what the runs sent so far (documents replaced,
/// tombstones applied) equals what a fresh run sends: pages created, edited and deleted,
/// commits changing and removing files, binaries and big files skipped, a project leaving and
/// rejoining the group, a new project in a subgroup.
async fn grouped_incremental_equals_full(changes: Vec<GroupChange>) -> Result<(), TestCaseError> {
    let server = GitlabServer::start(grouped_workspace(), TOKEN).await;
    let live = Synced::new(grouped_config(&server));
    let mut held: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut steps = vec![None];
    steps.extend(changes.into_iter().map(Some));
    for (serial, change) in steps.into_iter().enumerate() {
        if let Some(change) = &change {
            server.with(|gl| apply_group(gl, change, serial));
        }
        let run = live.run().await;
        for id in &run.gone {
            held.remove(id);
        }
        held.extend(run.documents.iter().map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str::<serde_json::Value>(v).unwrap(),
            )
        }));
        let fresh = Synced::new(grouped_config(&server)).run().await;
        let fresh: BTreeMap<String, serde_json::Value> = fresh
            .documents
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::from_str::<serde_json::Value>(v).unwrap(),
                )
            })
            .collect();
        prop_assert_eq!(
            held.keys().collect::<Vec<_>>(),
            fresh.keys().collect::<Vec<_>>(),
            "after step {} ({:?}): incremental runs hold other documents than a fresh run",
            serial,
            change
        );
        prop_assert_eq!(&held, &fresh, "after step {} ({:?})", serial, change);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_equal_a_fresh_run_with_wikis_code_and_groups() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&prop::collection::vec(group_change(), 1..8), |changes| {
        tokio::task::block_in_place(|| handle.block_on(grouped_incremental_equals_full(changes)))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn routes(server: &GitlabServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (route, _) in server.log() {
        *counts.entry(route).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_s_projects_wikis_and_text_files_are_read_and_an_unchanged_commit_costs_no_tree_request(
) {
    let server = GitlabServer::start(grouped_workspace(), TOKEN).await;
    // Enough files for the tree to take two keyset pages of 100.
    server.with(|gl| {
        let files: Vec<(String, Vec<u8>)> = (0..130)
            .map(|i| {
                (
                    format!("gen/g{i:03}.txt"),
                    format!("generated {i}").into_bytes(),
                )
            })
            .collect();
        let changes: Vec<(&str, Option<&[u8]>)> = files
            .iter()
            .map(|(f, b)| (f.as_str(), Some(b.as_slice())))
            .collect();
        gl.push(APP, "main", &changes);
    });
    let live = Synced::new(grouped_config(&server));
    let first = live.run().await;
    let ids: BTreeSet<&str> = first.documents.keys().map(String::as_str).collect();
    for id in [
        "group/app/issues/1",
        "group/app/wikis/home",
        "group/app/wikis/guides/build",
        "group/app/repository/README.md",
        "group/app/repository/src/main.rs",
        "group/app/repository/gen/g129.txt",
        "group/sub/lib/wikis/home",
        "group/sub/lib/repository/lib.py",
        "group/old/repository/notes.txt",
    ] {
        assert!(ids.contains(id), "{id} missing: {ids:?}");
    }
    assert!(
        !ids.contains("group/app/repository/logo.png"),
        "a binary is skipped"
    );
    assert!(
        !ids.contains("group/app/repository/data/big.txt"),
        "over the cap"
    );
    assert!(!ids.iter().any(|id| id.starts_with("other/")), "{ids:?}");
    let page: serde_json::Value =
        serde_json::from_str(&first.documents["group/app/wikis/guides/build"]).unwrap();
    assert_eq!(page["kind"], "wiki");
    assert_eq!(page["metadata"]["slug"], "guides/build");
    assert!(page["url"]
        .as_str()
        .unwrap()
        .ends_with("/group/app/-/wikis/guides/build"));
    let main: serde_json::Value =
        serde_json::from_str(&first.documents["group/app/repository/src/main.rs"]).unwrap();
    assert_eq!(main["kind"], "code_file");
    assert_eq!(main["metadata"]["path"], "src/main.rs");
    assert_eq!(main["metadata"]["language"], "rust");
    assert_eq!(main["metadata"]["ref"], "main");
    assert!(main["url"]
        .as_str()
        .unwrap()
        .ends_with("/group/app/-/blob/main/src/main.rs"));
    let readme: serde_json::Value =
        serde_json::from_str(&first.documents["group/app/repository/README.md"]).unwrap();
    assert_eq!(readme["kind"], "markdown");
    let tree_pages: Vec<String> = server
        .log()
        .into_iter()
        .filter(|(r, _)| r == "tree")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        tree_pages.len(),
        2 + 1 + 1,
        "APP's tree takes two pages: {tree_pages:?}"
    );

    // Nothing changed: no document is sent, no tree listed, no blob downloaded (not even the
    // skipped ones).
    server.clear_log();
    let quiet = live.run().await;
    assert!(quiet.documents.is_empty(), "{:?}", quiet.documents.keys());
    assert!(quiet.gone.is_empty(), "{:?}", quiet.gone);
    let quiet_routes = routes(&server);
    println!("requests of an unchanged run over 3 projects: {quiet_routes:?}");
    assert!(!quiet_routes.contains_key("tree"), "{quiet_routes:?}");
    assert!(!quiet_routes.contains_key("blob"), "{quiet_routes:?}");
    assert_eq!(quiet_routes["commit"], 3, "{quiet_routes:?}");
    assert_eq!(quiet_routes["wikis"], 3, "{quiet_routes:?}");
    assert_eq!(quiet_routes["group_projects"], 1, "{quiet_routes:?}");

    // One file changed, one removed: the tree is listed again, one blob downloaded.
    server.clear_log();
    server.with(|gl| {
        gl.push(
            APP,
            "main",
            &[
                ("src/main.rs", Some(b"fn main() {}\n".as_slice())),
                ("README.md", None),
            ],
        )
    });
    let pushed = live.run().await;
    assert_eq!(
        pushed.documents.keys().collect::<Vec<_>>(),
        ["group/app/repository/src/main.rs"]
    );
    assert_eq!(
        pushed.gone,
        BTreeSet::from(["group/app/repository/README.md".to_string()])
    );
    let pushed_routes = routes(&server);
    println!("requests after a commit changing one file: {pushed_routes:?}");
    assert_eq!(pushed_routes["blob"], 1, "{pushed_routes:?}");
    assert_eq!(pushed_routes["tree"], 2, "{pushed_routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_group_resumes_with_the_leftover_projects_first_and_sends_nothing_twice()
{
    let mut gl = Instance::default();
    gl.add_group(1, "big");
    let paths: Vec<String> = (0..8).map(|i| format!("big/p{i}")).collect();
    for (i, path) in paths.iter().enumerate() {
        gl.add_project(20 + i as u64, path);
        gl.open(path, false, &format!("issue of {path}"), "text");
        gl.write_page(path, "home", &format!("home of {path}"));
        gl.write_page(path, "faq", &format!("faq of {path}"));
        gl.push(
            path,
            "main",
            &[("a.rs", Some(format!("// {path}\n").as_bytes()))],
        );
    }
    let server = GitlabServer::start(gl, TOKEN).await;
    let big = || {
        let mut config = grouped_config(&server);
        config.groups = vec!["big".to_string()];
        config
    };
    let live = Synced::new(big());
    let first = live.run_until(5).await;
    let cursor = Cursor::load(&live.store, "gitlab", "s").await.unwrap();
    let recorded: BTreeSet<String> = cursor.scope_names().into_iter().collect();
    let leftover: BTreeSet<String> = paths
        .iter()
        .filter(|p| !recorded.contains(*p))
        .cloned()
        .collect();
    assert!(
        !recorded.is_empty(),
        "the first project was read whole: {:?} {:?}",
        first.documents.keys(),
        server.log()
    );
    assert!(
        !leftover.is_empty(),
        "the run stopped before the last project"
    );

    server.clear_log();
    let second = live.run().await;
    let order: Vec<String> = server
        .log()
        .into_iter()
        .filter(|(r, _)| r == "project")
        .map(|(_, p)| p.trim_start_matches("projects/").to_string())
        .collect();
    let read_first: BTreeSet<String> = order[..leftover.len()].iter().cloned().collect();
    assert_eq!(
        read_first, leftover,
        "leftover projects come first: {order:?}"
    );
    for id in second.documents.keys() {
        assert!(
            !recorded.iter().any(|p| id.starts_with(&format!("{p}/"))),
            "{id} was sent again though its project was recorded"
        );
    }
    let mut held = first.documents;
    held.extend(second.documents);
    let fresh = Synced::new(big()).run().await;
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        fresh.documents.keys().collect::<Vec<_>>(),
        "nothing lost"
    );
    assert_eq!(held.len(), 8 * 4);
}

/// Project issues are read by keyset pages (an opaque cursor in `Link`, no page numbers or
/// totals) to the end; an instance that answers 405 to keyset pagination is read by offset
/// pages instead, with the same documents.
#[tokio::test]
async fn issues_are_read_by_keyset_pages_and_by_offset_where_keyset_is_refused() {
    let project = || {
        let mut gl = Instance::default();
        gl.add_project(7, APP);
        for n in 0..250 {
            gl.open(APP, false, &format!("Issue {n}"), "Details.");
        }
        gl
    };
    for keyset in [true, false] {
        let server = GitlabServer::start(project(), TOKEN).await;
        if !keyset {
            server.without_issue_keyset();
        }
        let fetched = Synced::new(config(&server, &[APP])).run().await;
        assert_eq!(fetched.documents.len(), 250, "keyset {keyset}");
        let listings = server
            .log()
            .iter()
            .filter(|(route, _)| route == "issues")
            .count();
        // Three pages of 100; refused, the keyset request comes first.
        assert_eq!(listings, if keyset { 3 } else { 4 }, "keyset {keyset}");
    }
}

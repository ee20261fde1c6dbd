//! The `gitlab` source through the `kass` binary, against the local GitLab REST API server
//! (`sources/tests/support/gitlab_rest_api.rs`), a real Chroma and the local MiniLM model:
//! a phrase that occurs only in a comment finds its issue, an incremental run after a deleted
//! note and a deleted issue leaves neither in Chroma, and the token never appears in any
//! output; the fetcher Lambda reads GitLab through the Runtime API with the token only in
//! Secrets Manager (moto), and the embedder half embeds what it wrote from the S3 events.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;
#[path = "../sources/tests/support/gitlab_rest_api.rs"]
mod gitlab_rest_api;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/split_world.rs"]
mod split_world;

use std::time::Duration;

use fake_provider::{Api, FakeOptions};
use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::store::ObjectStore;
use serde_json::{json, Value};
use support::{kass, run_ok, ChromaServer};

const TOKEN: &str = "glpat-kass-binary-test-token-9876543210";
const TOKEN_ENV: &str = "KASS_GITLAB_BINARY_TEST_TOKEN";

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

fn run(args: &[&str], config: &std::path::Path) -> String {
    let out = run_ok(
        kass()
            .env(TOKEN_ENV, TOKEN)
            .args(args)
            .arg("--config")
            .arg(config),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked: {stdout}\n{stderr}"
    );
    stdout
}

fn top_hit(config: &std::path::Path, query: &str) -> serde_json::Value {
    let out = run(&["query", query, "-k", "1", "--json"], config);
    serde_json::from_str(out.lines().next().expect("a hit")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phrase_only_in_a_comment_finds_its_issue_and_deletions_reach_chroma() {
    let server = GitlabServer::start(project(), TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let config = dir.path().join("kass.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n\n[[sources]]\ntype = \"gitlab\"\nname = \"gitlab\"\nbase_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\nprojects = [\"group/app\"]\nmax_deletion_share = 1.0\n[sources.rate_limit]\nrate_scale = 1000.0\n{}",
            dir.path().join("store").display(),
            server.base_url(),
            chroma.config("gitlab"),
        ),
    )
    .unwrap();
    let cfg = config.clone();
    let (hit, status) = tokio::task::spawn_blocking(move || {
        run(&["run"], &cfg);
        (
            top_hit(&cfg, "the CI machine had no free disk left"),
            run(&["status", "--json"], &cfg),
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
        run(&["run"], &cfg);
        run(
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
    use runtime_api::{Outcome, RuntimeApi};
    let server = GitlabServer::start(project(), TOKEN).await;
    let source = format!(
        "\n[[sources]]\ntype = \"gitlab\"\nname = \"gitlab\"\nbase_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\nprojects = [\"group/app\"]\nmax_deletion_share = 1.0\n[sources.rate_limit]\nrate_scale = 1000.0\n",
        server.base_url()
    );
    let w = split_world::World::start(FakeOptions::new(Api::OpenAi), &source).await;
    w.setup_triggers("gitlab").await;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(w.moto.endpoint())
        .load()
        .await;
    let secret_arn = aws_sdk_secretsmanager::Client::new(&shared)
        .create_secret()
        .name("kass/gitlab")
        .secret_string(format!(r#"{{"{TOKEN_ENV}": "{TOKEN}"}}"#))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let config_text = std::fs::read_to_string(&w.config).unwrap();
    let schedule: Value =
        serde_json::from_str(include_str!("../examples/events/schedule.json")).unwrap();
    let invoke = |api: &RuntimeApi| {
        w.lambda(
            env!("CARGO_BIN_EXE_kass-fetcher"),
            api.env("kass-fetcher"),
            &config_text,
        )
        .env("KASS_SECRETS", &secret_arn)
        .env(split_world::KEY_ENV, "unused")
        .env_remove(TOKEN_ENV)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };

    let api = RuntimeApi::start().await;
    let fetcher = invoke(&api);
    let outcome = api
        .outcome(&api.invoke(schedule.clone()), Duration::from_secs(120))
        .await;
    let logs = stop(fetcher);
    let Outcome::Response(fetched) = outcome else {
        panic!("fetcher failed: {outcome:?}\n{logs}")
    };
    assert_eq!(fetched["complete"], true, "{fetched}");
    assert!(!fetched.to_string().contains(TOKEN), "{fetched}");
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs: {logs}"
    );
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
    let embedded = gitlab_chunk_ids(&url).await;
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
    let api = RuntimeApi::start().await;
    let fetcher = invoke(&api);
    let outcome = api
        .outcome(&api.invoke(schedule), Duration::from_secs(120))
        .await;
    let logs = stop(fetcher);
    assert!(
        matches!(outcome, Outcome::Response(_)),
        "{outcome:?}\n{logs}"
    );
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs: {logs}"
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

/// Ends a Lambda process and returns what it logged.
fn stop(mut child: std::process::Child) -> String {
    use std::io::Read;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    logs
}

/// Every chunk id of the `gitlab` source in the split world's collection.
async fn gitlab_chunk_ids(url: &str) -> std::collections::BTreeSet<String> {
    let records = support::chroma_get(
        url,
        "split",
        json!({"where": {"source": "gitlab"}, "include": []}),
    )
    .await
    .expect("the collection");
    records["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{records}"))
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

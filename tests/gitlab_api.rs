//! The `gitlab` source through the `kass` binary, against the local GitLab REST API server
//! (`sources/tests/support/gitlab_rest_api.rs`), a real Chroma and the local MiniLM model:
//! a phrase that occurs only in a comment finds its issue, an incremental run after a deleted
//! note and a deleted issue leaves neither in Chroma, and the token never appears in any
//! output.

mod support;

#[path = "../sources/tests/support/gitlab_rest_api.rs"]
mod gitlab_rest_api;

use gitlab_rest_api::{GitlabServer, Instance};
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
    let hit = tokio::task::spawn_blocking(move || {
        run(&["run"], &cfg);
        top_hit(&cfg, "the CI machine had no free disk left")
    })
    .await
    .unwrap();
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

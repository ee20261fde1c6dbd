//! Requests of an incremental `gitlab` run, against the local GitLab REST API server
//! (`sources/tests/support/gitlab_rest_api.rs`): a project of `--issues` issues (each with two
//! notes) is read once from scratch, then `--changed-percent` of its issues change (a new
//! note, an edited note, a deleted note: the last does not touch `updated_at`, as on GitLab)
//! and the next run is counted.
//!
//! ```text
//! cargo bench --bench gitlab_incremental -- [--issues 5000] [--changed-percent 1]
//! ```
//! Prints one JSON line: requests of the full and the incremental run, per route, and the
//! incremental run's requests per changed issue (goal <= 3: proportional to what changed,
//! not to the project), with the documents each run sent.

#[path = "../sources/tests/support/gitlab_rest_api.rs"]
mod gitlab_rest_api;

#[path = "support/source_run.rs"]
mod source_run;

use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::store::LocalStore;
use kass_sources::gitlab_api::GitlabApiConfig;
use serde_json::json;
use source_run::{per_route, run};

const TOKEN: &str = "glpat-bench-0000-gitlab-incremental";
const TOKEN_ENV: &str = "KASS_BENCH_GITLAB_TOKEN";
const APP: &str = "group/app";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn project(issues: u64) -> Instance {
    let mut gl = Instance::default();
    gl.add_project(7, APP);
    for n in 0..issues {
        let iid = gl.open(
            APP,
            false,
            &format!("Issue {n}: the deploy of build {n} fails"),
            "Steps to reproduce, expected and actual behaviour.",
        );
        gl.comment(APP, false, iid, "ana", "I can reproduce it on main.");
        gl.comment(APP, false, iid, "bo", "Fixed by the linker flag change.");
    }
    gl
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--bench" || a == "--issues" || a == "--changed-percent")
    {
        eprintln!(
            "gitlab_incremental: run with `cargo bench --bench gitlab_incremental`; nothing to do"
        );
        return;
    }
    let issues = arg(&args, "--issues", 5_000);
    let percent = arg(&args, "--changed-percent", 1);
    let server = GitlabServer::start(project(issues), TOKEN).await;
    std::env::set_var(TOKEN_ENV, TOKEN);
    let config: GitlabApiConfig = toml::from_str(&format!(
        "base_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\nprojects = [\"{APP}\"]\n[rate_limit]\nrate_scale = 1000.0\n",
        server.base_url()
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();

    let (full_documents, full_seconds) = run(&store, "gitlab", &config).await;
    let full = per_route(server.log());

    // The changes, spread over the project: a third new notes, a third edited notes, a
    // third deleted notes (which leave `updated_at` as it was).
    let changed = (issues * percent / 100).max(1);
    let step = issues / changed;
    server.with(|gl| {
        for k in 0..changed {
            let iid = 1 + k * step;
            match k % 3 {
                0 => {
                    gl.comment(APP, false, iid, "cy", "Seen again on the release branch.");
                }
                1 => {
                    let note = gl.project_mut(APP).issues[&iid].notes[0].id;
                    gl.edit_note(APP, false, iid, note, "I can reproduce it on main and 1.2.");
                }
                _ => {
                    let note = gl.project_mut(APP).issues[&iid].notes[1].id;
                    gl.delete_note(APP, false, iid, note);
                }
            }
        }
    });
    server.clear_log();
    let (incremental_documents, incremental_seconds) = run(&store, "gitlab", &config).await;
    let incremental = per_route(server.log());
    let requests: usize = incremental.values().sum();
    println!(
        "{}",
        json!({
            "issues": issues,
            "changed_issues": changed,
            "full": {
                "requests": full.values().sum::<usize>(),
                "per_route": full,
                "documents": full_documents,
                "seconds": (full_seconds * 100.0).round() / 100.0,
            },
            "incremental": {
                "requests": requests,
                "per_route": incremental,
                "documents": incremental_documents,
                "seconds": (incremental_seconds * 100.0).round() / 100.0,
            },
            "requests_per_changed_issue": (requests as f64 / changed as f64 * 100.0).round() / 100.0,
        })
    );
}

//! Requests of an incremental `backlog` run, against the local Backlog API v2 server
//! (`sources/tests/support/backlog_api.rs`): a project of `--issues` issues (each with two
//! comments) is read once from scratch, then `--changed-percent` of its issues change (a new
//! comment, an edited comment, a deleted comment: the last two do not move the issue's
//! `updated` there, and show only in the activity feed) and the next run is counted.
//!
//! ```text
//! cargo bench --bench backlog_incremental -- [--issues 5000] [--changed-percent 1]
//! ```
//! Prints one JSON line: requests of the full and the incremental run, per route, and the
//! incremental run's requests per changed issue (goal <= 3: proportional to what changed,
//! not to the project), with the documents each run sent.

#[path = "../sources/tests/support/backlog_api.rs"]
mod backlog_api;

#[path = "support/source_run.rs"]
mod source_run;

use backlog_api::{BacklogServer, Space};
use kass_pipeline::store::LocalStore;
use kass_sources::backlog::BacklogConfig;
use serde_json::json;
use source_run::{per_route, run};

const TOKEN: &str = "bench-backlog-api-key-0000";
const TOKEN_ENV: &str = "KASS_BENCH_BACKLOG_API_KEY";
const APP: &str = "APP";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn project(issues: u64) -> Space {
    let mut b = Space::default();
    b.add_project(APP, "markdown");
    // The project's history was written over the last months, not today.
    b.advance(-90 * 86_400);
    for n in 0..issues {
        let number = b.open(
            APP,
            &format!("Issue {n}: the deploy of build {n} fails"),
            "Steps to reproduce, expected and actual behaviour.",
        );
        b.comment(APP, number, "ana", "I can reproduce it on main.");
        b.comment(APP, number, "bo", "Fixed by the linker flag change.");
    }
    b
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--bench" || a == "--issues" || a == "--changed-percent")
    {
        eprintln!(
            "backlog_incremental: run with `cargo bench --bench backlog_incremental`; nothing to do"
        );
        return;
    }
    let issues = arg(&args, "--issues", 5_000);
    let percent = arg(&args, "--changed-percent", 1);
    let server = BacklogServer::start(project(issues), TOKEN).await;
    std::env::set_var(TOKEN_ENV, TOKEN);
    let config: BacklogConfig = toml::from_str(&format!(
        "base_url = \"{}\"\napi_key_env = \"{TOKEN_ENV}\"\nprojects = [\"{APP}\"]\ninclude = [\"issues\"]\n[rate_limit]\nrate_scale = 1000.0\n",
        server.base_url()
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();

    let (full_documents, full_seconds) = run(&store, "backlog", &config).await;
    let full = per_route(server.log());

    // The changes, spread over the project: a third new comments, a third edited comments,
    // a third deleted comments (the last two leave `updated` as it was).
    let changed = (issues * percent / 100).max(1);
    let step = issues / changed;
    server.with(|b| {
        b.catch_up();
        for k in 0..changed {
            let n = 1 + k * step;
            match k % 3 {
                0 => {
                    b.comment(APP, n, "cy", "Seen again on the release branch.");
                }
                1 => {
                    let c = b.project_mut(APP).issues[&n].comments[0].id;
                    b.edit_comment(APP, n, c, "I can reproduce it on main and 1.2.");
                }
                _ => {
                    let c = b.project_mut(APP).issues[&n].comments[1].id;
                    b.delete_comment(APP, n, c);
                }
            }
        }
    });
    server.clear_log();
    let (incremental_documents, incremental_seconds) = run(&store, "backlog", &config).await;
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

//! The share of Backlog's read budget a `backlog` backfill uses, against the local Backlog
//! API v2 server (`sources/tests/support/backlog_api.rs`) counting a real window per key and
//! request type (`rate_window.rs`: `X-RateLimit-Limit`, `-Remaining`, `-Reset` on every
//! answer, 429 beyond the limit).
//!
//! ```text
//! cargo bench --bench backlog_backfill -- [--limit 60] [--period 10] [--periods 3] [--issues 1000]
//! ```
//! The source is configured as a user would (its defaults: 600 requests per minute of its
//! own, the default headroom, one request at a time); the server allows `limit` reads per
//! `period` seconds, fewer than the source's own pace, so the answers' headers are what pace
//! it. The backfill of a project of `--issues` issues (two comments each: one read per
//! issue) starts at a window's start and is stopped after `periods` windows. Prints one JSON
//! line: the reads the server let through in those windows as a share of what it allowed
//! (goal >= 0.9) and the answers of 429 (goal 0).

#[path = "../sources/tests/support/backlog_api.rs"]
mod backlog_api;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backlog_api::{BacklogServer, Space};
use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{channel, Source, StageContext};
use kass_sources::backlog::BacklogConfig;
use kass_sources::{BuildSource, SourceDeps};
use serde_json::json;

const TOKEN: &str = "bench-backlog-backfill-key-0000";
const TOKEN_ENV: &str = "KASS_BENCH_BACKLOG_BACKFILL_KEY";
const APP: &str = "APP";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn project(issues: u64) -> Space {
    let mut b = Space::default();
    b.add_project(APP, "markdown");
    b.advance(-90 * 86_400);
    for n in 0..issues {
        let number = b.open(APP, &format!("Issue {n}"), "Steps to reproduce.");
        b.comment(APP, number, "ana", "I can reproduce it on main.");
        b.comment(APP, number, "bo", "Fixed by the linker flag change.");
    }
    b
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench" || a == "--limit") {
        eprintln!(
            "backlog_backfill: run with `cargo bench --bench backlog_backfill`; nothing to do"
        );
        return;
    }
    let limit = arg(&args, "--limit", 60);
    let period = arg(&args, "--period", 10);
    let periods = arg(&args, "--periods", 3);
    let issues = arg(&args, "--issues", 1_000);

    let server = BacklogServer::start(project(issues), TOKEN).await;
    server.rate_window(limit, period);
    std::env::set_var(TOKEN_ENV, TOKEN);
    let config: BacklogConfig = toml::from_str(&format!(
        "base_url = \"{}\"\napi_key_env = \"{TOKEN_ENV}\"\nprojects = [\"{APP}\"]\ninclude = [\"issues\"]\n",
        server.base_url()
    ))
    .unwrap();
    let source = config
        .build_with(SourceDeps {
            cursor: None,
            tombstones: None,
            allow_deletions: false,
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (queue, _writer) = spawn_writer(Arc::new(LocalStore::new(dir.path()).unwrap()));
    let ctx = StageContext::new("backlog", Shutdown::default(), queue);
    let (outlet, inlet) = channel::bounded("backlog", "bench", 64);
    let drain = tokio::spawn(async move {
        let mut documents = 0u64;
        while inlet.recv().await.is_some() {
            documents += 1;
        }
        documents
    });

    // Start at a window's start, so the run covers exactly `periods` whole windows.
    let now = epoch();
    let first_window = now.as_secs() / period + 1;
    tokio::time::sleep(Duration::from_secs(first_window * period) - now).await;
    let started = Instant::now();
    let run = tokio::spawn(Box::new(source).run(outlet, ctx));
    tokio::time::sleep_until((started + Duration::from_secs(periods * period)).into()).await;
    // One request at a time: what the log holds now was sent within the windows.
    let log = server.log();
    let (_, refused) = server.window_counts();
    run.abort();
    let documents = drain.await.unwrap();
    let sent_reads = log.iter().filter(|(route, _)| route != "issues").count() as u64;
    let searches = log.len() as u64 - sent_reads;
    // A refused request is in the log too, but not in the budget used.
    let reads = sent_reads.saturating_sub(refused);
    let allowed = limit * periods;
    println!(
        "{}",
        json!({
            "bench": "backlog_backfill",
            "limit": limit,
            "period_s": period,
            "periods": periods,
            "issues": issues,
            "reads_in_windows": reads,
            "reads_allowed": allowed,
            "read_budget_share": (reads as f64 / allowed as f64 * 1000.0).round() / 1000.0,
            "searches": searches,
            "answers_429": refused,
            "documents_sent": documents,
            "elapsed_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        })
    );
}

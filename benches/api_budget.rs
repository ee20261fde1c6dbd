//! Server-budget utilisation: how much of a GitLab-like server's per-user window an API
//! source backfill uses when the answers' `RateLimit-*` headers pace it, and how many 429s it
//! provokes, against the local GitLab server (`sources/tests/support/gitlab_rest_api.rs`)
//! enforcing a real window per token (`rate_window.rs`).
//!
//! ```text
//! cargo bench --bench api_budget -- [--limit 120] [--period 10] [--periods 3] [--tasks 4]
//! ```
//! The client is built as the `gitlab` source builds it (its 2,000 per minute tier, the
//! default headroom, the user-scoped header budget). Four tasks list issue pages and read
//! notes, starting at a window's start, for `periods` windows. Prints one JSON line: the
//! answers the server let through in those windows as a share of what it allowed (goal
//! >= 0.9) and the 429 count (goal 0).

#[path = "../sources/tests/support/gitlab_rest_api.rs"]
mod gitlab_rest_api;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::http::Auth;
use kass_pipeline::secret::Secret;
use kass_sources::api::{
    ApiClient, ApiConfig, BudgetScope, MethodLimiters, RateLimitConfig, ServerBudget, Tier,
};
use reqwest::header::HeaderName;

const TOKEN: &str = "glpat-bench-budget-00000000";
const ISSUES: u64 = 200;
const PER_PAGE: u64 = 20;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench" || a == "--limit") {
        eprintln!("api_budget: run with `cargo bench --bench api_budget`; nothing to do");
        return;
    }
    let limit = arg(&args, "--limit", 120);
    let period = arg(&args, "--period", 10);
    let periods = arg(&args, "--periods", 3);
    let tasks = arg(&args, "--tasks", 4);

    let mut instance = Instance::default();
    instance.add_project(7, "group/app");
    for i in 0..ISSUES {
        let iid = instance.open("group/app", false, &format!("issue {i}"), "text");
        instance.comment("group/app", false, iid, "ana", "first");
        instance.comment("group/app", false, iid, "bob", "second");
    }
    let server = GitlabServer::start(instance, TOKEN).await;
    server.rate_window(limit, period, false);

    let rate_limit = RateLimitConfig::default();
    let client = ApiClient::new(ApiConfig {
        auth: Some(Auth::Header(
            HeaderName::from_static("private-token"),
            Secret::new(TOKEN),
        )),
        limiters: Arc::new(
            MethodLimiters::new(Tier::default().with_default(2_000.0), &rate_limit).unwrap(),
        ),
        budget: Some(Arc::new(
            ServerBudget::new(BudgetScope::User, &rate_limit).unwrap(),
        )),
        ..ApiConfig::new("gitlab", format!("{}/api/v4", server.base_url()))
    })
    .unwrap();

    // Start at a window's start, so the run covers exactly `periods` whole windows.
    let now = epoch();
    let first_window = now.as_secs() / period + 1;
    tokio::time::sleep(Duration::from_secs(first_window * period) - now).await;
    let last_reset = (first_window + periods) * period;
    let deadline = Instant::now() + Duration::from_secs(periods * period);

    let next = Arc::new(AtomicU64::new(0));
    let in_windows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, next, in_windows) = (client.clone(), next.clone(), in_windows.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    // One listing page per page's worth of issues, then their notes.
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let step = i % (PER_PAGE + 1);
                    let page = (i / (PER_PAGE + 1)) % (ISSUES / PER_PAGE) + 1;
                    let answer = if step == 0 {
                        client
                            .get_route(
                                "issues",
                                "projects/7/issues",
                                &[
                                    ("per_page", &PER_PAGE.to_string()),
                                    ("page", &page.to_string()),
                                ],
                            )
                            .await
                    } else {
                        let iid = (page - 1) * PER_PAGE + step;
                        let path = format!("projects/7/issues/{iid}/notes");
                        client.get_route("issue_notes", &path, &[]).await
                    };
                    let answer = answer.expect("the backfill is never refused for good");
                    let reset: u64 = answer.headers["ratelimit-reset"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    if reset <= last_reset {
                        in_windows.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let (_, refused) = server.window_counts();
    let used = in_windows.load(Ordering::Relaxed);
    let allowed = limit * periods;
    println!(
        "{}",
        serde_json::json!({
            "bench": "api_budget",
            "limit": limit,
            "period_s": period,
            "periods": periods,
            "tasks": tasks,
            "requests_ok_in_windows": used,
            "requests_allowed": allowed,
            "budget_share": used as f64 / allowed as f64,
            "answers_429": refused,
            "elapsed_s": started.elapsed().as_secs_f64(),
        })
    );
}

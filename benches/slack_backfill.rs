//! Request budget of the `slack_api` source during a backfill, against the local Slack Web API
//! server (`sources/tests/support/slack_web_api.rs`) enforcing each tier's per-method limit
//! strictly (sliding window, 429 + Retry-After) and its page maximum.
//!
//! ```text
//! cargo bench --bench slack_backfill -- [--minute-ms 100]
//! ```
//! Time is shrunk, never slept through: the tier's minute lasts `--minute-ms` (the source's
//! `rate_scale` and the server's window agree). For each tier it prints one JSON line: per
//! method the requests accepted, the share of the method's allowed budget used over the
//! backfill (goal >= 0.9), the messages per request (goal for history: the tier's page
//! maximum), the 429s received (goal 0), and the whole budget's share (both methods).

#[path = "../sources/tests/support/slack_web_api.rs"]
mod slack_web_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{channel, Source, StageContext};
use kass_sources::slack_api::{RateTier, SlackApiConfig};
use kass_sources::BuildSource;
use serde_json::json;
use slack_web_api::{ts, ServerOptions, SlackServer, Workspace};

const TOKEN: &str = "xoxb-bench-0000-slack-backfill";
const METHODS: [&str; 2] = ["conversations.history", "conversations.replies"];

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

/// One channel, `days` days of history before the 14-day window, `per_day` messages a day and a
/// thread of three replies every other day.
fn workspace(days: u64, per_day: u64) -> Workspace {
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    let start = chrono::Utc::now().timestamp() as u64 - 20 * 86_400;
    for day in 0..days {
        let noon = start - day * 86_400;
        for n in 0..per_day {
            let text = format!("day {day} message {n}: the deploy of build {n} went out");
            ws.post("dev-help", &ts(noon - n * 60, 0), "U1", &text);
        }
        if day % 2 == 0 {
            let parent = ts(noon - 5_000, 0);
            ws.post("dev-help", &parent, "U1", "who owns the flaky test?");
            for r in 0..3 {
                ws.reply(
                    "dev-help",
                    &parent,
                    &ts(noon - 4_000 + r * 10, 0),
                    "U1",
                    "me",
                );
            }
        }
    }
    ws
}

async fn backfill(tier: RateTier, minute: Duration, days: u64, per_day: u64) -> serde_json::Value {
    let (rpm, page_max) = match tier {
        RateTier::Internal => (50, 200),
        RateTier::NonMarketplace => (1, 15),
    };
    let window = minute / rpm;
    let mut options = ServerOptions::new(TOKEN);
    options.page_cap = Some(page_max);
    options.latency = Duration::from_millis(2);
    for method in METHODS {
        options = options.limit(method, 1, window);
    }
    let server = SlackServer::start(workspace(days, per_day), options).await;
    std::env::set_var("KASS_BENCH_SLACK_TOKEN", TOKEN);
    let mut config = SlackApiConfig::new(server.base_url());
    config.token_env = "KASS_BENCH_SLACK_TOKEN".into();
    config.rate_tier = tier;
    config.rate_limit.rate_scale = 60_000.0 / minute.as_millis() as f64;
    let source = config.build().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (queue, _writer) = spawn_writer(Arc::new(LocalStore::new(dir.path()).unwrap()));
    let ctx = StageContext::new("slack_api", Shutdown::default(), queue);
    let (outlet, inlet) = channel::bounded("slack_api", "bench", 64);
    let started = Instant::now();
    let task = tokio::spawn(Box::new(source).run(outlet, ctx));
    let mut documents = 0;
    while inlet.recv().await.is_some() {
        documents += 1;
    }
    task.await.unwrap().unwrap();
    let elapsed = started.elapsed();

    let log = server.log();
    let mut per_method = serde_json::Map::new();
    let (mut used, mut allowed) = (0.0, 0.0);
    for method in METHODS {
        let accepted: Vec<_> = log
            .iter()
            .filter(|l| l.method == method && l.status == 200)
            .collect();
        let (Some(first), Some(last)) = (accepted.first(), accepted.last()) else {
            continue;
        };
        let span = last.at.duration_since(first.at);
        let budget = span.as_secs_f64() / window.as_secs_f64() + 1.0;
        let messages: usize = accepted.iter().map(|l| l.messages).sum();
        used += accepted.len() as f64;
        allowed += budget;
        per_method.insert(
            method.to_string(),
            json!({
                "requests": accepted.len(),
                "budget_share": (accepted.len() as f64 / budget * 1000.0).round() / 1000.0,
                "messages_per_request": (messages as f64 / accepted.len() as f64 * 10.0).round() / 10.0,
                "refused_429": log.iter().filter(|l| l.method == method && l.status == 429).count(),
            }),
        );
    }
    json!({
        "tier": format!("{tier:?}"),
        "page_max": page_max,
        "requests_per_tier_minute": rpm,
        "tier_minute_ms": minute.as_millis() as u64,
        "documents": documents,
        "seconds": (elapsed.as_secs_f64() * 100.0).round() / 100.0,
        "methods": per_method,
        "budget_share_both_methods": (used / allowed * 1000.0).round() / 1000.0,
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench" || a == "--minute-ms") {
        eprintln!("slack_backfill: run with `cargo bench --bench slack_backfill`; nothing to do");
        return;
    }
    let minute = Duration::from_millis(arg(&args, "--minute-ms", 100));
    // 1 request per tier minute, 15 a page: 40 days of 12 messages, 20 threads.
    println!(
        "{}",
        backfill(RateTier::NonMarketplace, minute, 40, 12).await
    );
    // 50 requests per tier minute, 200 a page: the same minute, a larger workspace.
    println!(
        "{}",
        backfill(RateTier::Internal, minute * 25, 200, 40).await
    );
}

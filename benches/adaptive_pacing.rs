//! Adaptive pacing under a limit the workers do not know (issue 26): three `kass embed --listen`
//! workers on one moto SQS queue, a real Chroma, and a local OpenAI-shaped provider that allows
//! `--limit` requests per 1 s window for the whole account, strictly (429 + Retry-After beyond).
//! The workers' config does not say the real limit: `--mode none` gives no `requests_per_minute`
//! at all, `--mode high` gives ten times the truth (`workers = 3`, so each worker's share is
//! still 3.3x the whole real limit).
//!
//! ```text
//! cargo bench --bench adaptive_pacing -- [--mode none|high|both] [--limit 12] [--pages 900]
//! ```
//! Prints one JSON line per mode: the provider's requests, 429s and achieved share of the limit
//! (accepted requests per window / limit) in each quarter of the busy time (from the first
//! request until no message is left waiting, so the drain's tail with fewer than three busy
//! workers is not counted), the same for the first and the later half, and the chunks lost
//! (unique chunks announced minus Chroma's count).

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/split_world.rs"]
mod split_world;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::time::{Duration, Instant};

use fake_provider::{Api, FakeOptions, Logged};
use serde_json::{json, Value};
use split_world::{World, KEY_ENV};

const WORKERS: usize = 3;
const WINDOW: Duration = Duration::from_millis(1000);
const LATENCY: Duration = Duration::from_millis(20);

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

async fn visible_messages(w: &World) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    w.sqs
        .get_queue_attributes()
        .queue_url(&w.queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&A::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

/// Requests, 429s and the accepted share of the limit of the requests that arrived in
/// `[from, to)`.
fn phase(log: &[Logged], from: Instant, to: Instant, limit: usize) -> Value {
    let within: Vec<&Logged> = log.iter().filter(|l| l.at >= from && l.at < to).collect();
    let accepted = within.iter().filter(|l| l.status == 200).count();
    let windows = to.duration_since(from).as_secs_f64() / WINDOW.as_secs_f64();
    json!({
        "requests": within.len(),
        "429": within.iter().filter(|l| l.status == 429).count(),
        "share_of_limit": ((accepted as f64 / windows / limit as f64) * 100.0).round() / 100.0,
    })
}

async fn run(mode: &str, limit: usize, pages: usize) -> Value {
    let mut strict = FakeOptions::new(Api::OpenAi);
    strict.requests_per_window = Some(limit);
    strict.window = WINDOW;
    strict.latency = LATENCY;
    let w = World::start(strict, "[embed]\nbatch_size = 3\n").await;
    let told = match mode {
        "none" => String::new(),
        "high" => format!("requests_per_minute = {}\n", limit * 10),
        other => panic!("--mode none|high|both, not {other}"),
    };
    let config = std::fs::read_to_string(&w.config).unwrap().replacen(
        &format!("api_key_env = \"{KEY_ENV}\"\n"),
        &format!(
            "api_key_env = \"{KEY_ENV}\"\n{told}tokens_per_minute = 0\nrate_window_ms = {}\nworkers = {WORKERS}\n",
            WINDOW.as_millis()
        ),
        1,
    );
    std::fs::write(&w.config, config).unwrap();
    let docs: String = (0..pages)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("wiki/page-{i}"), "kind": "text",
                       "text": format!("Runbook page {i}: restart worker {i} after the deploy of service {}.", i * 7)})
            )
        })
        .collect();
    std::fs::write(w.dir.join("wiki.jsonl"), docs).unwrap();
    w.run(&["fetch"]).await;
    let keys = w.batch_keys("wiki").await;
    let expected = w.chunk_ids(&keys).await.len();
    w.announce(&keys).await;

    let mut children: Vec<_> = (0..WORKERS)
        .map(|i| {
            let mut cmd = w.kass();
            cmd.args([
                "embed",
                "--listen",
                &format!("sqs://{}", split_world::QUEUE),
                "--until-idle",
                "--wait",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(w.dir.join(format!("listener-{i}.log"))).unwrap());
            cmd.spawn().unwrap()
        })
        .collect();
    let started = Instant::now();
    let mut drained_at = None;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "listeners did not finish"
        );
        if drained_at.is_none() && visible_messages(&w).await == 0 {
            drained_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failed = 0;
    for child in &mut children {
        if !child.wait().unwrap().success() {
            failed += 1;
        }
    }
    let stored = w.chroma_count().await as usize;
    let log = w.provider.log();
    let first = log.iter().map(|l| l.at).min().unwrap();
    let last = log.iter().map(|l| l.at).max().unwrap();
    let end = drained_at.unwrap_or(last).max(first + WINDOW);
    let busy = end.duration_since(first);
    let at = |f: f64| first + busy.mul_f64(f);
    let quarters: Vec<Value> = (0..4)
        .map(|q| phase(&log, at(q as f64 / 4.0), at((q + 1) as f64 / 4.0), limit))
        .collect();
    let (most, _) = w.provider.max_in_any_window();
    json!({
        "bench": "adaptive_pacing",
        "mode": mode,
        "configured_requests_per_window": if mode == "high" { json!(limit * 10) } else { Value::Null },
        "true_limit_per_window": limit,
        "window_ms": WINDOW.as_millis() as u64,
        "provider_latency_ms": LATENCY.as_millis() as u64,
        "workers": WORKERS,
        "batch_files": keys.len(),
        "busy_s": (busy.as_secs_f64() * 100.0).round() / 100.0,
        "quarters": quarters,
        "first_half": phase(&log, first, at(0.5), limit),
        "later_half": phase(&log, at(0.5), end, limit),
        "tail_after_drain": phase(&log, end, last + Duration::from_millis(1), limit),
        "most_in_one_window": most,
        "requests": log.len(),
        "429_total": log.iter().filter(|l| l.status == 429).count(),
        "chunks_expected": expected,
        "chunks_stored": stored,
        "chunks_lost": expected.saturating_sub(stored),
        "workers_failed": failed,
    })
}

fn cpu() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    (
        model,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench" || a == "--mode") {
        eprintln!("adaptive_pacing: run with `cargo bench --bench adaptive_pacing`; nothing to do");
        return;
    }
    let mode = arg(&args, "--mode").unwrap_or("both").to_string();
    let limit: usize = arg(&args, "--limit").map_or(12, |v| v.parse().unwrap());
    let pages: usize = arg(&args, "--pages").map_or(900, |v| v.parse().unwrap());
    let modes: Vec<&str> = match mode.as_str() {
        "both" => vec!["none", "high"],
        m => vec![m],
    };
    let (model, cores) = cpu();
    for mode in modes {
        let mut line = run(mode, limit, pages).await;
        line["cpu"] = json!(model);
        line["nproc"] = json!(cores);
        println!("{line}");
    }
}

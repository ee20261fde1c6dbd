//! Adaptive pacing under a limit the workers do not know (issue 26): three `kass embed --listen`
//! workers on one moto SQS queue, a real Chroma, and a local OpenAI-shaped provider that allows
//! `--limit` requests per 1 s window for the whole account, strictly (429 + Retry-After beyond).
//! The workers' config does not say the real limit: `--mode none` gives no request rate at all
//! (`requests_per_minute = 0`), `--mode high` gives ten times the truth (`workers = 3`, so each
//! worker's share is still 3.3x the whole real limit), `--mode default` leaves the line out, so
//! OpenAI's default of 100 applies (per 1 s window here: 8.3 times the truth; before this was
//! noticed, this was what `--mode none` measured).
//!
//! ```text
//! cargo bench --profile dev --bench adaptive_pacing -- [--mode none|high|default|both|all]
//!     [--learning on|off|both] [--rounds 3] [--limit 12] [--pages 900] [--timeline]
//! ```
//! `--learning off` starts the workers with `KASS_ADAPTIVE_LEARNING=off` (the diagnostic switch
//! of `stages/src/embed/adaptive.rs`): without a request rate they then never pace, and only
//! the 429s' Retry-After holds them back. It changes nothing in `--mode high` or `default`
//! (paced from the start), which makes those with `--learning both` a control: their on/off
//! difference is the noise. `--rounds R` repeats everything R times, interleaved (round 1: on, off; round 2: on,
//! off; ...), so a drift of the machine's load hits both alike.
//!
//! Prints one JSON line per run: the provider's requests, 429s (and their share of the
//! requests) and achieved share of the limit (accepted requests per window / limit) in each
//! quarter of the busy time (from the first request until no message is left waiting, so the
//! drain's tail with fewer than three busy workers is not counted), the same for the first and
//! the later half, `settle_s` (seconds from the first request to the first of three 1 s windows
//! in a row without a 429), and the chunks lost (unique chunks announced minus Chroma's
//! count); with `--timeline`, each worker's accepted requests and 429s in every window. Then
//! one `summary` line per mode and learning: the median and range over the rounds of each of
//! those figures.

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
/// OpenAI's default `requests_per_minute` (stages/src/embed/providers/openai.rs), which
/// `--mode default` leaves in force: per 1 s window here, 8.3 times the truth.
const OPENAI_DEFAULT_RPM: usize = 100;

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Requests, 429s (and their share) and the accepted share of the limit of the requests that
/// arrived in `[from, to)`.
fn phase(log: &[Logged], from: Instant, to: Instant, limit: usize) -> Value {
    let within: Vec<&Logged> = log.iter().filter(|l| l.at >= from && l.at < to).collect();
    let accepted = within.iter().filter(|l| l.status == 200).count();
    let windows = to.duration_since(from).as_secs_f64() / WINDOW.as_secs_f64();
    let refused = within.iter().filter(|l| l.status == 429).count();
    json!({
        "requests": within.len(),
        "429": refused,
        "429_share": ((refused as f64 / within.len().max(1) as f64) * 1000.0).round() / 1000.0,
        "share_of_limit": ((accepted as f64 / windows / limit as f64) * 100.0).round() / 100.0,
    })
}

/// Seconds from `first` to the start of the first three whole windows in a row (counted from
/// `first`, before `end`) in which no request was answered 429; `null` if there are none.
fn settle(log: &[Logged], first: Instant, end: Instant) -> Value {
    let windows = (end.duration_since(first).as_secs_f64() / WINDOW.as_secs_f64()) as usize;
    let mut refused = vec![false; windows];
    for l in log.iter().filter(|l| l.status == 429 && l.at >= first) {
        let i = (l.at.duration_since(first).as_secs_f64() / WINDOW.as_secs_f64()) as usize;
        if i < windows {
            refused[i] = true;
        }
    }
    (0..windows.saturating_sub(2))
        .find(|&i| !refused[i] && !refused[i + 1] && !refused[i + 2])
        .map_or(Value::Null, |i| json!(i as f64 * WINDOW.as_secs_f64()))
}

async fn run(mode: &str, learning: bool, limit: usize, pages: usize, timeline: bool) -> Value {
    let mut strict = FakeOptions::new(Api::OpenAi);
    strict.requests_per_window = Some(limit);
    strict.window = WINDOW;
    strict.latency = LATENCY;
    // Any key: each worker presents its own, so the log tells them apart.
    strict.api_key = None;
    let w = World::start(strict, "[embed]\nbatch_size = 3\n").await;
    let told = match mode {
        // 0: no request rate at all (without the line, the provider's default applies).
        "none" => "requests_per_minute = 0\n".to_string(),
        "high" => format!("requests_per_minute = {}\n", limit * 10),
        "default" => String::new(),
        other => panic!("--mode none|high|default|both|all, not {other}"),
    };
    w.set_provider_lines(&format!(
        "{told}tokens_per_minute = 0\nrate_window_ms = {}\nworkers = {WORKERS}\n",
        WINDOW.as_millis()
    ));
    w.write_runbook_pages(pages);
    w.run(&["fetch"]).await;
    let keys = w.batch_keys("wiki").await;
    let expected = w.chunk_ids(&keys).await.len();
    w.announce(&keys).await;

    let mut children: Vec<_> = (0..WORKERS)
        .map(|i| {
            let mut cmd = w.kass();
            cmd.env(KEY_ENV, format!("worker-{i}"));
            if !learning {
                cmd.env("KASS_ADAPTIVE_LEARNING", "off");
            }
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
    let drained_at = w
        .wait_for_listeners(&mut children, Duration::from_secs(600))
        .await;
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
    let mut line = json!({
        "bench": "adaptive_pacing",
        "mode": mode,
        "learning": if learning { "on" } else { "off" },
        "configured_requests_per_window": match mode {
            "high" => json!(limit * 10),
            "default" => json!(OPENAI_DEFAULT_RPM),
            _ => Value::Null,
        },
        "true_limit_per_window": limit,
        "window_ms": WINDOW.as_millis() as u64,
        "provider_latency_ms": LATENCY.as_millis() as u64,
        "workers": WORKERS,
        "batch_files": keys.len(),
        "busy_s": (busy.as_secs_f64() * 100.0).round() / 100.0,
        "quarters": quarters,
        "first_half": phase(&log, first, at(0.5), limit),
        "later_half": phase(&log, at(0.5), end, limit),
        "settle_s": settle(&log, first, end),
        "tail_after_drain": phase(&log, end, last + Duration::from_millis(1), limit),
        "most_in_one_window": most,
        "requests": log.len(),
        "429_total": log.iter().filter(|l| l.status == 429).count(),
        "chunks_expected": expected,
        "chunks_stored": stored,
        "chunks_lost": expected.saturating_sub(stored),
        "workers_failed": failed,
    });
    if timeline {
        line["timeline"] = windows(&log, first, last);
    }
    line
}

/// Per window from `first` to `last`: each worker's accepted requests and 429s, as
/// `"a/r a/r a/r"` (worker 0, 1, 2).
fn windows(log: &[Logged], first: Instant, last: Instant) -> Value {
    let n = (last.duration_since(first).as_secs_f64() / WINDOW.as_secs_f64()) as usize + 1;
    let mut counts = vec![[(0, 0); WORKERS]; n];
    for l in log {
        let i = (l.at.duration_since(first).as_secs_f64() / WINDOW.as_secs_f64()) as usize;
        let worker = l
            .key
            .as_deref()
            .and_then(|k| k.strip_prefix("worker-"))
            .and_then(|k| k.parse::<usize>().ok())
            .unwrap_or(0)
            .min(WORKERS - 1);
        match l.status {
            200 => counts[i][worker].0 += 1,
            429 => counts[i][worker].1 += 1,
            _ => {}
        }
    }
    json!(counts
        .iter()
        .map(|w| w
            .iter()
            .map(|(a, r)| format!("{a}/{r}"))
            .collect::<Vec<_>>()
            .join(" "))
        .collect::<Vec<_>>())
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

/// The figures the summary gives, as (name, JSON pointer into a run's line).
const FIGURES: [(&str, &str); 11] = [
    ("first_half_429", "/first_half/429"),
    ("later_half_429", "/later_half/429"),
    ("later_half_429_share", "/later_half/429_share"),
    ("last_quarter_429", "/quarters/3/429"),
    ("429_total", "/429_total"),
    ("first_half_share", "/first_half/share_of_limit"),
    ("later_half_share", "/later_half/share_of_limit"),
    ("last_quarter_share", "/quarters/3/share_of_limit"),
    ("settle_s", "/settle_s"),
    ("busy_s", "/busy_s"),
    ("chunks_lost", "/chunks_lost"),
];

/// Median, lowest, highest and every value of one figure over the rounds. A run without it (a
/// `settle_s` that never came) counts as higher than any value: the median or the highest is
/// then `null` ("never"), and `missing` counts such runs.
fn spread(runs: &[&Value], pointer: &str) -> Value {
    let each: Vec<Option<f64>> = runs
        .iter()
        .map(|r| r.pointer(pointer).and_then(Value::as_f64))
        .collect();
    let mut sorted = each.clone();
    // None (never) last.
    sorted.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let n = sorted.len();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => sorted[n / 2 - 1]
            .zip(sorted[n / 2])
            .map(|(a, b)| (a + b) / 2.0),
    };
    json!({
        "median": median,
        "min": sorted.first().copied().flatten(),
        "max": sorted.last().copied().flatten(),
        "rounds": each,
        "missing": each.iter().filter(|v| v.is_none()).count(),
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--bench" || a == "--mode" || a == "--learning" || a == "--rounds")
    {
        eprintln!("adaptive_pacing: run with `cargo bench --bench adaptive_pacing`; nothing to do");
        return;
    }
    let mode = arg(&args, "--mode").unwrap_or("none").to_string();
    let learning = arg(&args, "--learning").unwrap_or("both").to_string();
    let rounds: usize = arg(&args, "--rounds").map_or(3, |v| v.parse().unwrap());
    let limit: usize = arg(&args, "--limit").map_or(12, |v| v.parse().unwrap());
    let pages: usize = arg(&args, "--pages").map_or(900, |v| v.parse().unwrap());
    let timeline = args.iter().any(|a| a == "--timeline");
    let modes: Vec<&str> = match mode.as_str() {
        "both" => vec!["none", "high"],
        "all" => vec!["none", "high", "default"],
        m => vec![m],
    };
    let learnings: Vec<bool> = match learning.as_str() {
        "both" => vec![true, false],
        "on" => vec![true],
        "off" => vec![false],
        other => panic!("--learning on|off|both, not {other}"),
    };
    let (model, cores) = cpu();
    let mut lines: Vec<Value> = Vec::new();
    for round in 1..=rounds {
        for &mode in &modes {
            for &learning in &learnings {
                let mut line = run(mode, learning, limit, pages, timeline).await;
                line["round"] = json!(round);
                line["cpu"] = json!(model);
                line["nproc"] = json!(cores);
                println!("{line}");
                lines.push(line);
            }
        }
    }
    for &mode in &modes {
        for &learning in &learnings {
            let on = if learning { "on" } else { "off" };
            let runs: Vec<&Value> = lines
                .iter()
                .filter(|l| l["mode"] == mode && l["learning"] == on)
                .collect();
            let mut summary = json!({
                "bench": "adaptive_pacing",
                "summary": true,
                "mode": mode,
                "learning": on,
                "rounds": runs.len(),
                "true_limit_per_window": limit,
                "cpu": model,
                "nproc": cores,
            });
            for (name, pointer) in FIGURES {
                summary[name] = spread(&runs, pointer);
            }
            println!("{summary}");
        }
    }
}

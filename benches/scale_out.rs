//! Three `kass embed --listen` workers against one: the same queue of batch files (moto SQS,
//! announced by the bucket), embedded by a local OpenAI-shaped provider answering in 100 ms with
//! no limit, stored in a real Chroma. The provider is the bottleneck a worker waits on, as a
//! remote one is; the goal (issue 26) is three workers at least 2.5x faster than one.
//!
//! ```text
//! cargo bench --bench scale_out -- [--pages 600] [--rounds 2]
//! ```
//! Rounds alternate one worker and three (`--until-idle --wait 1`), each into a new collection
//! from the same announcements. Prints one JSON line: wall times per round, the median ratio,
//! the provider's requests and what they alone cost (requests x 100 ms / workers), the CPU.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/split_world.rs"]
mod split_world;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::time::{Duration, Instant};

use fake_provider::{Api, FakeOptions};
use serde_json::json;
use split_world::World;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

const LATENCY: Duration = Duration::from_millis(100);

/// Drains the queue with `workers` listeners into `collection`; the wall time.
async fn drain(w: &World, workers: usize, collection: &str) -> Duration {
    let text = std::fs::read_to_string(&w.config).unwrap();
    let config = w.dir.join(format!("{collection}.toml"));
    std::fs::write(
        &config,
        text.replace(
            "collection = \"split\"",
            &format!("collection = \"{collection}\""),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|_| {
            let mut cmd = w.kass();
            cmd.env("KASS_CONFIG", &config)
                .args([
                    "embed",
                    "--listen",
                    &format!("sqs://{}", split_world::QUEUE),
                    "--until-idle",
                    "--wait",
                    "1",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }
    started.elapsed()
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
    if !args.iter().any(|a| a == "--bench" || a == "--pages") {
        eprintln!("scale_out: run with `cargo bench --bench scale_out`; nothing to do");
        return;
    }
    let pages = arg(&args, "--pages", 600);
    let rounds = arg(&args, "--rounds", 2);
    let mut options = FakeOptions::new(Api::OpenAi);
    options.latency = LATENCY;
    // One request per batch file of 4 chunks, one at a time per worker: the worker waits on
    // the provider as it does on a remote one.
    let w = World::start(options, "[embed]\nbatch_size = 4\nmax_in_flight = 1\n").await;
    w.write_runbook_pages(pages as usize);
    w.run(&["fetch"]).await;
    let keys = w.batch_keys("wiki").await;
    let chunks = w.chunk_ids(&keys).await.len();

    let mut one = Vec::new();
    let mut three = Vec::new();
    let mut requests = Vec::new();
    for round in 0..rounds {
        for workers in [1, 3] {
            w.announce(&keys).await;
            let before = w.provider.log().len();
            let took = drain(&w, workers, &format!("round-{round}-{workers}")).await;
            requests.push(w.provider.log().len() - before);
            if workers == 1 {
                one.push(took)
            } else {
                three.push(took)
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let secs = |v: &[Duration]| {
        v.iter()
            .map(|d| (d.as_secs_f64() * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    };
    let (model, cores) = cpu();
    let per_round = requests[0];
    println!(
        "{}",
        json!({
            "bench": "scale_out",
            "batch_files": keys.len(),
            "chunks": chunks,
            "provider_latency_ms": LATENCY.as_millis() as u64,
            "requests_per_round": requests,
            "one_worker_s": secs(&one),
            "three_workers_s": secs(&three),
            "ratio_of_medians": (median(&mut one.clone()) / median(&mut three.clone()) * 100.0).round() / 100.0,
            "provider_wait_alone_s": {"one": per_round as f64 * LATENCY.as_secs_f64(), "three": per_round as f64 * LATENCY.as_secs_f64() / 3.0},
            "cpu": model,
            "nproc": cores,
        })
    );
}

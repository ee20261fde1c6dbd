//! A `discord` backfill against the local Discord API server
//! (`sources/tests/support/discord_api.rs`) enforcing a per-bucket window (`--limit` requests
//! per second per bucket and channel, the documented figure of Get Channel Messages is 5) and
//! a global one (`--global` per second): `--channels` channels of `--messages` messages each,
//! all older than the lookback window, read from scratch.
//!
//! ```text
//! cargo bench --bench discord_backfill -- [--channels 2] [--messages 2000] [--limit 5] [--global 50] [--headroom 0]
//! ```
//! Prints one JSON line: requests and answers of 429, messages per request of the messages
//! route (goal: 100 while a backfill lasts), and the share of each channel's bucket budget
//! used while it was read (goal >= 0.9: requests per full second of its busy span over the
//! limit).

#[path = "../sources/tests/support/discord_api.rs"]
mod discord_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use discord_api::{now, DiscordServer, Guild};
use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{channel, Source, StageContext};
use kass_sources::cursor::Cursor;
use kass_sources::discord::DiscordConfig;
use kass_sources::{BuildSource, SourceDeps};
use serde_json::json;

const TOKEN: &str = "bench.discord.bot-token-0000";
const TOKEN_ENV: &str = "KASS_BENCH_DISCORD_TOKEN";

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let channels = arg(&args, "--channels", 2.0) as usize;
    let messages = arg(&args, "--messages", 2000.0) as i64;
    let limit = arg(&args, "--limit", 5.0) as u64;
    let global = arg(&args, "--global", 50.0) as u64;
    let headroom = arg(&args, "--headroom", 0.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut g = Guild::new("197038439483310086");
        let t0 = now();
        for c in 0..channels {
            let id = g.add_channel(&format!("c{c}"), 0);
            for i in 0..messages {
                // All older than the 14-day window: the backfill reads them.
                let at = t0 - 100 * 86_400 + i * (80 * 86_400) / messages;
                g.post(&id, "u1", &format!("message {i} of channel {c}"), at);
            }
        }
        let server = DiscordServer::start(g, TOKEN).await;
        server.rate_limits(limit, 1, global);
        std::env::set_var(TOKEN_ENV, TOKEN);
        let since = chrono::DateTime::from_timestamp(t0 - 120 * 86_400, 0)
            .unwrap()
            .date_naive();
        let config: DiscordConfig = toml::from_str(&format!(
            "base_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\nguilds = [\"197038439483310086\"]\nsince = \"{since}\"\nglobal_per_second = {global}\n[rate_limit]\nheadroom = {headroom}\n",
            server.base_url()
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let cursor = Arc::new(Cursor::load(&store, "discord", "s").await.unwrap());
        let source = config
            .build_with(SourceDeps {
                cursor: Some(cursor),
                ..SourceDeps::default()
            })
            .unwrap();
        let (queue, _writer) = spawn_writer(Arc::new(store));
        let ctx = StageContext::new("discord", Shutdown::default(), queue);
        let (outlet, inlet) = channel::bounded("discord", "bench", 64);
        let started = Instant::now();
        let task = tokio::spawn(Box::new(source).run(outlet, ctx));
        let mut documents = 0;
        while inlet.recv().await.is_some() {
            documents += 1;
        }
        task.await.unwrap().unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let log = server.timed_log();
        let (admitted, refused, global_refused) = server.refusals();
        let message_requests = log.iter().filter(|(r, _, _)| r == "messages").count();
        // Per channel: its messages requests per whole second of its busy span.
        let mut by_channel: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (route, major, at) in &log {
            if route == "messages" {
                by_channel.entry(major).or_default().push(*at);
            }
        }
        // The first request of each channel is its window's read, made while every channel is
        // refreshed before any backfill starts: the busy span is the backfill's.
        let shares: BTreeMap<&str, f64> = by_channel
            .iter()
            .map(|(major, times)| (major, &times[1.min(times.len())..]))
            .filter_map(|(major, times)| {
                let first = times.first()?.floor() + 1.0;
                let last = times.last()?.floor();
                let seconds = last - first;
                (seconds >= 1.0).then(|| {
                    let inside = times.iter().filter(|t| **t >= first && **t < last).count();
                    (*major, inside as f64 / (seconds * limit as f64))
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "channels": channels,
                "messages_per_channel": messages,
                "bucket_limit_per_second": limit,
                "global_per_second": global,
                "headroom": headroom,
                "seconds": elapsed,
                "documents": documents,
                "requests": admitted + refused + global_refused,
                "answers_429": refused + global_refused,
                "messages_per_request": server.served_messages() as f64 / message_requests.max(1) as f64,
                "bucket_budget_share": shares,
            })
        );
    });
}

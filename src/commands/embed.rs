//! `kass embed` and `kass replay`: the embed half alone, over announced or listed batch files.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;

use kass::config::KassConfig;
use kass::split::EmbedHalf;
use kass_pipeline::batch::{batch_source, day_prefix, parse_batch_key, source_prefix, BatchRef};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{build_store, ObjectStore, StoreConfig};
use kass_sources::s3_events::sqs::{PollSettings, SqsQueue};

use crate::ConfigArg;

/// What to embed is required: without it there is nothing to do, and "0 batch files" would
/// read like an empty bucket.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["keys", "prefix", "listen"]))]
pub struct EmbedArgs {
    /// Batch keys to embed (as in the store).
    #[arg(long, num_args = 1.., conflicts_with_all = ["prefix", "listen"])]
    pub keys: Vec<String>,
    /// Every batch key under this prefix, e.g. `slack/chunked/year=2025/month=10/`.
    #[arg(long, conflicts_with = "listen")]
    pub prefix: Option<String>,
    /// Consume the bucket's ObjectCreated notifications from an SQS queue: `sqs://NAME` or
    /// the queue URL. Runs until interrupted.
    #[arg(long, value_name = "QUEUE")]
    pub listen: Option<String>,
    /// With --listen: stop when a poll finds the queue empty.
    #[arg(long, requires = "listen")]
    pub until_idle: bool,
    /// With --listen: seconds a received message stays invisible; extended while its batches
    /// are embedded.
    #[arg(long, default_value_t = 120, requires = "listen",
          value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub visibility_timeout: u64,
    /// With --listen: long-poll wait per receive, in seconds (at most 20).
    #[arg(long, default_value_t = 20, requires = "listen")]
    pub wait: u64,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Bucket holding the batches (default: the configured S3 store's).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Sources to replay (repeatable; default: the configured [[sources]], else every source
    /// with batches in the bucket).
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// First day (UTC, inclusive) of the batches' partition dates, YYYY-MM-DD.
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// Last day (UTC, inclusive), YYYY-MM-DD.
    #[arg(long)]
    pub until: Option<NaiveDate>,
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn embed(args: EmbedArgs) -> Result<()> {
    let config = KassConfig::load(&args.config.config)?;
    let store = build_store(&config.store).await?;
    let shutdown = Shutdown::default();
    super::run::watch_ctrl_c(shutdown.clone());
    let started = Instant::now();
    if let Some(queue) = &args.listen {
        let StoreConfig::S3(s3) = &config.store else {
            bail!("--listen needs an S3 store ([store] type = \"s3\"): events name objects in a bucket");
        };
        let settings = PollSettings {
            wait: Duration::from_secs(args.wait.min(20)),
            visibility_timeout: Duration::from_secs(args.visibility_timeout),
            ..PollSettings::default()
        };
        let queue = SqsQueue::connect(&s3.endpoint(), queue, settings).await?;
        let half = EmbedHalf::connect(config, store, shutdown).await?;
        eprintln!("listening on {} (Ctrl-C to stop)", queue.url());
        let report = half.listen(&queue, args.until_idle).await;
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .map(|(reason, n)| format!("{reason}: {n}"))
            .collect();
        println!(
            "kass embed: {} batch files ({} announced twice), {} new or changed chunks stored, {} messages done ({} left for redelivery) in {:.1}s; skipped event records: {}; {} dead letter(s)",
            report.batches,
            report.duplicates,
            report.chunks_stored,
            report.messages_deleted,
            report.messages_left_for_retry,
            started.elapsed().as_secs_f64(),
            if skipped.is_empty() { "none".to_string() } else { skipped.join(", ") },
            report.dead_letters
        );
        if report.interrupted {
            eprintln!("interrupted: messages in progress were handed back to the queue");
            std::process::exit(130);
        }
        return Ok(());
    }

    let batches = match &args.prefix {
        Some(prefix) => {
            let listed = store.list(prefix).await?;
            let (batches, others): (Vec<_>, Vec<_>) =
                listed.into_iter().partition(|k| batch_source(k).is_some());
            if !others.is_empty() {
                eprintln!(
                    "note: {} object(s) under {prefix} are not batch files; skipped",
                    others.len()
                );
            }
            batch_refs(batches)?
        }
        None => batch_refs(args.keys.clone())?,
    };
    embed_listed(config, store, shutdown, batches, "embed", started).await
}

pub async fn replay(args: ReplayArgs) -> Result<()> {
    let mut config = KassConfig::load(&args.config.config)?;
    if let Some(bucket) = &args.bucket {
        match &mut config.store {
            StoreConfig::S3(s3) => s3.bucket = bucket.clone(),
            StoreConfig::Local { .. } => {
                config.store = StoreConfig::S3(kass_pipeline::store::S3StoreConfig {
                    bucket: bucket.clone(),
                    max_attempts: 5,
                    ..Default::default()
                });
                // The endpoint and region variables apply to the bucket given here too.
                config.apply_env(|k| std::env::var(k).ok());
                if let StoreConfig::S3(s3) = &mut config.store {
                    s3.bucket = bucket.clone();
                }
            }
        }
    }
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since > until {
            bail!("--since {since} is after --until {until}");
        }
    }
    let store = build_store(&config.store).await?;
    let configured: Vec<String> = config
        .sources
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    let keys = replay_keys(store.as_ref(), &args, &configured).await?;
    let shutdown = Shutdown::default();
    super::run::watch_ctrl_c(shutdown.clone());
    embed_listed(
        config,
        store,
        shutdown,
        batch_refs(keys)?,
        "replay",
        Instant::now(),
    )
    .await
}

async fn embed_listed(
    config: KassConfig,
    store: std::sync::Arc<dyn ObjectStore>,
    shutdown: Shutdown,
    batches: Vec<BatchRef>,
    command: &str,
    started: Instant,
) -> Result<()> {
    let count = batches.len();
    let half = EmbedHalf::connect(config, store.clone(), shutdown).await?;
    let report = half.embed(batches).await?;
    println!(
        "kass {command}: {count} batch files, {} new or changed chunks embedded with {} in {:.1}s; {} dead letter(s){}",
        report.outputs,
        half.embedder().model(),
        started.elapsed().as_secs_f64(),
        report.dead_letters,
        if report.dead_letters > 0 {
            " under _dead_letter/"
        } else {
            ""
        }
    );
    Ok(())
}

/// Keys as batch references; a key that is not a batch file is an error naming it.
fn batch_refs(keys: Vec<String>) -> Result<Vec<BatchRef>> {
    kass_pipeline::tally::expect("batch files", keys.len() as u64);
    keys.into_iter()
        .filter(|k| !k.starts_with("_"))
        .map(|key| {
            let source = batch_source(&key)
                .with_context(|| {
                    format!("{key:?} is not a batch file ({{source}}/chunked/....json[.gz])")
                })?
                .to_string();
            Ok(BatchRef {
                key,
                source,
                chunk_count: 0,
                bytes: 0,
            })
        })
        .collect()
}

/// Longest range listed day by day; a longer or open one lists the source's prefix once and
/// filters by the partition date.
const MAX_DAYS_LISTED: i64 = 92;

/// The batch keys a replay covers: per source, the day partitions in the range (listed one
/// prefix per day, so a short range costs as many LISTs as days, never a scan of the bucket).
async fn replay_keys(
    store: &dyn ObjectStore,
    args: &ReplayArgs,
    config_sources: &[String],
) -> Result<Vec<String>> {
    let configured: Vec<String> = config_sources.to_vec();
    let sources = if !args.sources.is_empty() {
        args.sources.clone()
    } else if !configured.is_empty() {
        configured
    } else {
        // No sources named anywhere: find them by listing the bucket once.
        let mut sources: Vec<String> = store
            .list("")
            .await?
            .iter()
            .filter_map(|k| batch_source(k).map(str::to_string))
            .collect();
        sources.sort();
        sources.dedup();
        sources
    };
    let mut keys = Vec::new();
    for source in &sources {
        match (args.since, args.until) {
            (Some(since), Some(until)) if (until - since).num_days() <= MAX_DAYS_LISTED => {
                let mut day = since;
                while day <= until {
                    keys.extend(store.list(&day_prefix(source, day)).await?);
                    day = day.succ_opt().expect("a next day");
                }
            }
            (since, until) => {
                let listed = store.list(&source_prefix(source)).await?;
                keys.extend(listed.into_iter().filter(|key| {
                    parse_batch_key(key).is_some_and(|parts| {
                        since.is_none_or(|d| parts.date >= d)
                            && until.is_none_or(|d| parts.date <= d)
                    })
                }));
            }
        }
    }
    keys.retain(|k| batch_source(k).is_some());
    Ok(keys)
}

//! `kass setup-triggers` and `kass check-triggers`: the bucket notifications that start the
//! embed half (the rules themselves: `kass_sources::s3_events::triggers`).

use anyhow::{bail, Result};

use kass::config::KassConfig;
use kass_pipeline::batch::source_prefix;
use kass_pipeline::store::{S3Store, S3StoreConfig, StoreConfig};
use kass_sources::s3_events::triggers::{self, TriggerTarget, Uncovered};

use crate::ConfigArg;

#[derive(clap::Args, Debug)]
pub struct SetupTriggersArgs {
    /// The bucket the fetch half writes batches to.
    #[arg(long)]
    pub bucket: String,
    /// Where events go: `sqs:QUEUE_ARN` or `lambda:FUNCTION_ARN`.
    #[arg(long)]
    pub target: String,
    /// Sources to announce (comma-separated; default: the configured [[sources]] names).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args, Debug)]
pub struct CheckTriggersArgs {
    #[arg(long)]
    pub bucket: String,
    /// Sources expected to have rules (comma-separated; default: the configured ones).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// The bucket's client, with the endpoint settings of the configured S3 store (moto, MinIO)
/// when there is one; the config file is optional here.
async fn bucket_client(config: &ConfigArg, bucket: &str) -> Result<(S3Store, Vec<String>)> {
    let loaded = if config.config.exists() {
        Some(KassConfig::load(&config.config)?)
    } else {
        None
    };
    let mut s3 = match loaded.as_ref().map(|c| &c.store) {
        Some(StoreConfig::S3(s3)) => s3.clone(),
        _ => S3StoreConfig {
            max_attempts: 5,
            ..Default::default()
        },
    };
    s3.bucket = bucket.to_string();
    let sources = loaded
        .map(|c| c.sources.iter().map(|s| s.name().to_string()).collect())
        .unwrap_or_default();
    Ok((S3Store::connect(&s3).await, sources))
}

/// The sources named on the command line, else those of the config.
fn chosen(named: &[String], configured: Vec<String>) -> Vec<String> {
    if named.is_empty() {
        configured
    } else {
        named.to_vec()
    }
}

pub async fn setup(args: SetupTriggersArgs) -> Result<()> {
    let (store, configured) = bucket_client(&args.config, &args.bucket).await?;
    let sources = chosen(&args.sources, configured);
    if sources.is_empty() {
        bail!("no sources: pass --sources slack,gitlab,... or a config with [[sources]]");
    }
    let target: TriggerTarget = args.target.parse()?;
    let ours = triggers::set_up(&store, &sources, &target).await?;
    println!(
        "bucket {}: ObjectCreated of {{source}}/chunked/*.json[.gz] -> {} for {} (rules {})",
        store.bucket(),
        args.target,
        sources.join(", "),
        ours.join(", ")
    );
    Ok(())
}

pub async fn check(args: CheckTriggersArgs) -> Result<()> {
    let (store, configured) = bucket_client(&args.config, &args.bucket).await?;
    let sources = chosen(&args.sources, configured);
    let rules = triggers::rules(&store).await?;
    println!(
        "bucket {}: {} notification rule(s)",
        store.bucket(),
        rules.len()
    );
    for rule in &rules {
        println!(
            "  {}: {} prefix={:?} suffix={:?} -> {}",
            rule.id,
            rule.events.join(","),
            rule.prefix,
            rule.suffix,
            rule.target
        );
    }
    let uncovered = triggers::uncovered(&rules, &sources);
    for (source, what) in &uncovered {
        let prefix = source_prefix(source);
        match what {
            Uncovered::Nothing => eprintln!(
                "warning: source `{source}` has no ObjectCreated rule for {prefix}*.json: its batches will not be embedded (run `kass setup-triggers`)"
            ),
            Uncovered::Gzip => {
                eprintln!("note: source `{source}` has no rule for gzip batches ({prefix}*.json.gz)")
            }
        }
    }
    let missing = uncovered
        .iter()
        .filter(|(_, what)| *what == Uncovered::Nothing)
        .count();
    if missing == 0 && !sources.is_empty() {
        println!("every source ({}) has a rule", sources.join(", "));
    }
    Ok(())
}

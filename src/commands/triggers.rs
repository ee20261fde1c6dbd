//! `kass setup-triggers` and `kass check-triggers`: the bucket notifications that start the
//! embed half. S3 filter rules take a literal prefix and suffix, no wildcards, so `*/chunked/`
//! becomes one rule per source prefix and suffix (`.json`, and `.json.gz` for gzip batches).

use anyhow::{bail, Context, Result};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};

use kass::config::KassConfig;
use kass_pipeline::batch::{source_prefix, BATCH_SUFFIXES};
use kass_pipeline::store::{S3Store, S3StoreConfig, StoreConfig};

use crate::ConfigArg;

/// A rule per batch suffix, labelled in the rule id: `kass-{source}-json`, `kass-{source}-json-gz`.
fn suffixes() -> impl Iterator<Item = (&'static str, &'static str)> {
    BATCH_SUFFIXES.iter().map(|c| {
        let suffix = c.extension();
        (
            suffix,
            if suffix.ends_with(".gz") {
                "json-gz"
            } else {
                "json"
            },
        )
    })
}

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

fn rule_id(source: &str, suffix_label: &str) -> String {
    format!("kass-{source}-{suffix_label}")
}

fn filter(prefix: &str, suffix: &str) -> NotificationConfigurationFilter {
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(prefix)
                        .build(),
                )
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Suffix)
                        .value(suffix)
                        .build(),
                )
                .build(),
        )
        .build()
}

async fn current(store: &S3Store) -> Result<NotificationConfiguration> {
    let answer = store
        .client()
        .get_bucket_notification_configuration()
        .bucket(store.bucket())
        .send()
        .await;
    let got = match answer {
        Ok(got) => got,
        // moto answers an empty configuration with `<GetBucketNotificationResponse/>`, which
        // the SDK cannot decode; S3 itself sends `<NotificationConfiguration/>`.
        Err(SdkError::ServiceError(e))
            if e.raw().status().as_u16() == 200
                && e.raw().body().bytes().is_some_and(|b| {
                    String::from_utf8_lossy(b)
                        .trim_end()
                        .ends_with("Response xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>")
                }) =>
        {
            return Ok(NotificationConfiguration::builder().build());
        }
        Err(e) => {
            return Err(anyhow::anyhow!("{}", DisplayErrorContext(&e))).with_context(|| {
                format!("cannot read the notifications of bucket {}", store.bucket())
            })
        }
    };
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(got.queue_configurations)
        .set_lambda_function_configurations(got.lambda_function_configurations)
        .set_topic_configurations(got.topic_configurations)
        .set_event_bridge_configuration(got.event_bridge_configuration)
        .build())
}

pub async fn setup(args: SetupTriggersArgs) -> Result<()> {
    let (store, configured) = bucket_client(&args.config, &args.bucket).await?;
    let sources = if args.sources.is_empty() {
        configured
    } else {
        args.sources.clone()
    };
    if sources.is_empty() {
        bail!("no sources: pass --sources slack,gitlab,... or a config with [[sources]]");
    }
    let (kind, arn) = args
        .target
        .split_once(':')
        .filter(|(k, _)| *k == "sqs" || *k == "lambda")
        .with_context(|| {
            format!(
                "--target {}: expected sqs:QUEUE_ARN or lambda:FUNCTION_ARN",
                args.target
            )
        })?;
    let existing = current(&store).await?;
    let ours: Vec<String> = sources
        .iter()
        .flat_map(|s| suffixes().map(move |(_, label)| rule_id(s, label)))
        .collect();
    let is_ours = |id: Option<&str>| id.is_some_and(|id| ours.iter().any(|o| o == id));
    // Unrelated rules stay as they are; ours are replaced, so a re-run is a no-op.
    let mut queues: Vec<QueueConfiguration> = existing
        .queue_configurations()
        .iter()
        .filter(|c| !is_ours(c.id()))
        .cloned()
        .collect();
    let mut lambdas: Vec<LambdaFunctionConfiguration> = existing
        .lambda_function_configurations()
        .iter()
        .filter(|c| !is_ours(c.id()))
        .cloned()
        .collect();
    for source in &sources {
        let prefix = source_prefix(source);
        for (suffix, label) in suffixes() {
            let id = rule_id(source, label);
            if kind == "sqs" {
                queues.push(
                    QueueConfiguration::builder()
                        .id(id)
                        .queue_arn(arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(filter(&prefix, suffix))
                        .build()?,
                );
            } else {
                lambdas.push(
                    LambdaFunctionConfiguration::builder()
                        .id(id)
                        .lambda_function_arn(arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(filter(&prefix, suffix))
                        .build()?,
                );
            }
        }
    }
    let config = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_lambda_function_configurations(Some(lambdas))
        .set_topic_configurations(Some(existing.topic_configurations().to_vec()))
        .set_event_bridge_configuration(existing.event_bridge_configuration().cloned())
        .build();
    store
        .client()
        .put_bucket_notification_configuration()
        .bucket(store.bucket())
        .notification_configuration(config)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
        .with_context(|| {
            format!(
                "cannot write the notifications of bucket {}",
                store.bucket()
            )
        })?;
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
    let sources = if args.sources.is_empty() {
        configured
    } else {
        args.sources.clone()
    };
    let existing = current(&store).await?;
    let mut rules: Vec<(String, String, Vec<String>, String, String)> = Vec::new();
    let describe = |f: Option<&NotificationConfigurationFilter>| {
        let mut prefix = String::new();
        let mut suffix = String::new();
        for rule in f
            .and_then(|f| f.key())
            .map(|k| k.filter_rules())
            .unwrap_or_default()
        {
            let value = rule.value().unwrap_or_default().to_string();
            match rule.name() {
                Some(FilterRuleName::Prefix) => prefix = value,
                Some(FilterRuleName::Suffix) => suffix = value,
                _ => {}
            }
        }
        (prefix, suffix)
    };
    for q in existing.queue_configurations() {
        let (prefix, suffix) = describe(q.filter());
        let events = q.events().iter().map(|e| e.as_str().to_string()).collect();
        rules.push((
            q.id().unwrap_or("-").into(),
            format!("sqs:{}", q.queue_arn()),
            events,
            prefix,
            suffix,
        ));
    }
    for l in existing.lambda_function_configurations() {
        let (prefix, suffix) = describe(l.filter());
        let events = l.events().iter().map(|e| e.as_str().to_string()).collect();
        rules.push((
            l.id().unwrap_or("-").into(),
            format!("lambda:{}", l.lambda_function_arn()),
            events,
            prefix,
            suffix,
        ));
    }
    println!(
        "bucket {}: {} notification rule(s)",
        store.bucket(),
        rules.len()
    );
    for (id, target, events, prefix, suffix) in &rules {
        println!(
            "  {id}: {} prefix={prefix:?} suffix={suffix:?} -> {target}",
            events.join(",")
        );
    }
    let mut missing = 0;
    for source in &sources {
        let prefix = source_prefix(source);
        let covers = |suffix: &str| {
            rules.iter().any(|(_, _, events, p, s)| {
                prefix.starts_with(p.as_str())
                    && suffix.ends_with(s.as_str())
                    && events.iter().any(|e| e.starts_with("s3:ObjectCreated:"))
            })
        };
        if !covers(".json") {
            missing += 1;
            eprintln!(
                "warning: source `{source}` has no ObjectCreated rule for {prefix}*.json: its batches will not be embedded (run `kass setup-triggers`)"
            );
        } else if !covers(".json.gz") {
            eprintln!("note: source `{source}` has no rule for gzip batches ({prefix}*.json.gz)");
        }
    }
    if missing == 0 && !sources.is_empty() {
        println!("every source ({}) has a rule", sources.join(", "));
    }
    Ok(())
}

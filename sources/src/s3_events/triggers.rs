//! The bucket notification rules that start the embed half. S3 filter rules take a literal
//! prefix and suffix, no wildcards, so `*/chunked/` becomes one rule per source prefix and
//! batch suffix (`kass-{source}-json`, `kass-{source}-json-gz`). Setting them up replaces only
//! kass's own rules, so it is idempotent and leaves everyone else's in place.

use std::str::FromStr;

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};

use kass_pipeline::batch::{source_prefix, BATCH_SUFFIXES};
use kass_pipeline::store::S3Store;

/// Where ObjectCreated events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerTarget {
    Sqs(String),
    Lambda(String),
}

impl FromStr for TriggerTarget {
    type Err = TriggerError;

    /// `sqs:QUEUE_ARN` or `lambda:FUNCTION_ARN`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("sqs", arn)) if !arn.is_empty() => Ok(Self::Sqs(arn.to_string())),
            Some(("lambda", arn)) if !arn.is_empty() => Ok(Self::Lambda(arn.to_string())),
            _ => Err(TriggerError::Target(text.to_string())),
        }
    }
}

/// A notification rule as the bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// `sqs:ARN` or `lambda:ARN`.
    pub target: String,
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl Rule {
    /// Whether ObjectCreated events of a key with this prefix and suffix match the rule.
    pub fn covers(&self, prefix: &str, suffix: &str) -> bool {
        prefix.starts_with(&self.prefix)
            && suffix.ends_with(&self.suffix)
            && self
                .events
                .iter()
                .any(|e| e.starts_with("s3:ObjectCreated:"))
    }
}

/// Why the rules could not be read or written, naming the bucket.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("--target {0}: expected sqs:QUEUE_ARN or lambda:FUNCTION_ARN")]
    Target(String),
    #[error("cannot read the notifications of bucket {bucket}: {reason}")]
    Read { bucket: String, reason: String },
    #[error("cannot write the notifications of bucket {bucket}: {reason}")]
    Write { bucket: String, reason: String },
}

/// The suffixes of batch files with the label each rule id carries.
fn suffixes() -> impl Iterator<Item = (&'static str, &'static str)> {
    BATCH_SUFFIXES.iter().map(|c| {
        let suffix = c.extension();
        let label = if suffix.ends_with(".gz") {
            "json-gz"
        } else {
            "json"
        };
        (suffix, label)
    })
}

/// The ids of kass's rules for these sources.
pub fn rule_ids(sources: &[String]) -> Vec<String> {
    sources
        .iter()
        .flat_map(|s| suffixes().map(move |(_, label)| format!("kass-{s}-{label}")))
        .collect()
}

fn filter(prefix: &str, suffix: &str) -> NotificationConfigurationFilter {
    let rule = |name, value: &str| FilterRule::builder().name(name).value(value).build();
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(rule(FilterRuleName::Prefix, prefix))
                .filter_rules(rule(FilterRuleName::Suffix, suffix))
                .build(),
        )
        .build()
}

async fn current(store: &S3Store) -> Result<NotificationConfiguration, TriggerError> {
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
            return Err(TriggerError::Read {
                bucket: store.bucket().to_string(),
                reason: DisplayErrorContext(&e).to_string(),
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

/// Writes one ObjectCreated rule per source and batch suffix to `target`, replacing kass's
/// earlier rules for these sources and keeping every other rule. Returns the rule ids.
pub async fn set_up(
    store: &S3Store,
    sources: &[String],
    target: &TriggerTarget,
) -> Result<Vec<String>, TriggerError> {
    let existing = current(store).await?;
    let ours = rule_ids(sources);
    let is_ours = |id: Option<&str>| id.is_some_and(|id| ours.iter().any(|o| o == id));
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
    let built = |e: aws_sdk_s3::error::BuildError| TriggerError::Write {
        bucket: store.bucket().to_string(),
        reason: e.to_string(),
    };
    for source in sources {
        let prefix = source_prefix(source);
        for (suffix, label) in suffixes() {
            let id = format!("kass-{source}-{label}");
            let created = Event::from("s3:ObjectCreated:*");
            match target {
                TriggerTarget::Sqs(arn) => queues.push(
                    QueueConfiguration::builder()
                        .id(id)
                        .queue_arn(arn)
                        .events(created)
                        .filter(filter(&prefix, suffix))
                        .build()
                        .map_err(built)?,
                ),
                TriggerTarget::Lambda(arn) => lambdas.push(
                    LambdaFunctionConfiguration::builder()
                        .id(id)
                        .lambda_function_arn(arn)
                        .events(created)
                        .filter(filter(&prefix, suffix))
                        .build()
                        .map_err(built)?,
                ),
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
        .map_err(|e| TriggerError::Write {
            bucket: store.bucket().to_string(),
            reason: DisplayErrorContext(&e).to_string(),
        })?;
    Ok(ours)
}

/// Every queue and Lambda rule the bucket holds.
pub async fn rules(store: &S3Store) -> Result<Vec<Rule>, TriggerError> {
    let existing = current(store).await?;
    let describe = |f: Option<&NotificationConfigurationFilter>| {
        let (mut prefix, mut suffix) = (String::new(), String::new());
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
    let events = |e: &[Event]| e.iter().map(|e| e.as_str().to_string()).collect();
    let queues = existing.queue_configurations().iter().map(|q| {
        let (prefix, suffix) = describe(q.filter());
        Rule {
            id: q.id().unwrap_or("-").into(),
            target: format!("sqs:{}", q.queue_arn()),
            events: events(q.events()),
            prefix,
            suffix,
        }
    });
    let lambdas = existing.lambda_function_configurations().iter().map(|l| {
        let (prefix, suffix) = describe(l.filter());
        Rule {
            id: l.id().unwrap_or("-").into(),
            target: format!("lambda:{}", l.lambda_function_arn()),
            events: events(l.events()),
            prefix,
            suffix,
        }
    });
    Ok(queues.chain(lambdas).collect())
}

/// What a source's batches lack: no rule at all, or none for gzip batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncovered {
    Nothing,
    Gzip,
}

/// The sources whose batches no rule announces, and what is missing for each.
pub fn uncovered(rules: &[Rule], sources: &[String]) -> Vec<(String, Uncovered)> {
    sources
        .iter()
        .filter_map(|source| {
            let prefix = source_prefix(source);
            let covers = |suffix: &str| rules.iter().any(|r| r.covers(&prefix, suffix));
            if !covers(".json") {
                Some((source.clone(), Uncovered::Nothing))
            } else if !covers(".json.gz") {
                Some((source.clone(), Uncovered::Gzip))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_parsed_or_refused_by_name() {
        assert_eq!(
            "sqs:arn:aws:sqs:eu-west-1:1:q"
                .parse::<TriggerTarget>()
                .unwrap(),
            TriggerTarget::Sqs("arn:aws:sqs:eu-west-1:1:q".into())
        );
        assert!(matches!(
            "lambda:arn:x".parse::<TriggerTarget>(),
            Ok(TriggerTarget::Lambda(_))
        ));
        let err = "sns:arn".parse::<TriggerTarget>().unwrap_err().to_string();
        assert!(err.contains("sns:arn"), "{err}");
    }

    #[test]
    fn a_source_is_uncovered_until_both_suffixes_are() {
        let rule = |suffix: &str| Rule {
            id: "r".into(),
            target: "sqs:q".into(),
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: "slack/chunked/".into(),
            suffix: suffix.into(),
        };
        let sources = vec!["slack".to_string(), "wiki".to_string()];
        assert_eq!(
            uncovered(&[rule(".json")], &sources),
            vec![
                ("slack".to_string(), Uncovered::Gzip),
                ("wiki".to_string(), Uncovered::Nothing)
            ]
        );
        assert_eq!(
            uncovered(&[rule(".json"), rule(".json.gz")], &sources[..1]),
            vec![]
        );
        assert_eq!(
            rule_ids(&sources[..1]),
            ["kass-slack-json", "kass-slack-json-gz"]
        );
    }
}

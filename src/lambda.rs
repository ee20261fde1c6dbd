//! What the two Lambda binaries share: configuration from the environment, provider keys from
//! Secrets Manager, JSON logs, counters written to the log after each invocation, and the two
//! handlers. Init does nothing beyond reading the environment: clients, the embedding model and
//! the Chroma collection are made on the first invocation and kept for the next ones.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use kass_pipeline::redact;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{build_store, AwsEndpoint, StoreConfig};

use crate::assembly::{fetch_half, load_cursors, record_fetch_success, save_cursors, FetchPlan};
use crate::config::KassConfig;
use crate::logging::{error_text, init_logging, LogFormat};
use crate::split::EmbedHalf;
use kass_sources::s3_events::sqs_event::sqs_messages;
use kass_sources::s3_events::unreadable_event::dead_letter_event;

/// The configuration: `KASS_CONFIG_TOML` holds the TOML text itself (a Lambda has no config
/// file); `S3_BUCKET_NAME`, `CHROMADB_HOST`, `CHROMADB_PORT` and the other documented variables
/// apply on top.
pub fn config_from_env() -> Result<KassConfig> {
    let text = std::env::var("KASS_CONFIG_TOML").unwrap_or_default();
    KassConfig::parse(&text).context("invalid KASS_CONFIG_TOML")
}

/// Loads the Secrets Manager secret into the environment before any other thread exists
/// (setting variables while other threads may read them is a data race), on a runtime of its
/// own. Call first thing in `main`.
pub fn load_secrets_at_start() -> Result<()> {
    let config = config_from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(load_secrets(&endpoint_of(&config)))?;
    Ok(())
}

/// JSON logs on stderr (CloudWatch), and an in-process metrics recorder whose series
/// [`report_metrics`] writes out after each invocation.
pub fn init() -> PrometheusHandle {
    init_logging(LogFormat::Json);
    let handle = crate::logging::prometheus_builder()
        .expect("valid buckets")
        .install_recorder()
        .expect("the only metrics recorder");
    kass_pipeline::telemetry::describe();
    handle
}

/// Reports this invocation's metrics (see [`crate::invocation_metrics`]): EMF lines on stdout,
/// and a push to the Pushgateway when `KASS_PUSHGATEWAY_URL` is set.
pub async fn report_metrics(handle: &PrometheusHandle) {
    use crate::invocation_metrics::{push, EmfReporter, PUSHGATEWAY_VAR};
    static EMF: std::sync::Mutex<Option<EmfReporter>> = std::sync::Mutex::new(None);
    let exposition = handle.render();
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "kass".into());
    let documents = EMF
        .lock()
        .expect("emf lock")
        .get_or_insert_with(EmfReporter::default)
        .documents(
            &exposition,
            &function,
            chrono::Utc::now().timestamp_millis(),
        );
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        for document in documents {
            let _ = writeln!(stdout, "{document}");
        }
        let _ = stdout.flush();
    }
    if let Some(base) = std::env::var(PUSHGATEWAY_VAR)
        .ok()
        .filter(|v| !v.is_empty())
    {
        let instance = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
            .unwrap_or_else(|_| format!("pid-{}", std::process::id()));
        push(&base, &function, &instance, exposition).await;
    }
}

/// Sets each key of the JSON secret named by `KASS_SECRETS` (an ARN or name) as an environment
/// variable, unless already set: provider keys (`VOYAGE_API_KEY`, ...) and `CHROMA_TOKEN` then
/// reach the config as they do on a workstation. Values are never logged.
pub async fn load_secrets(endpoint: &AwsEndpoint) -> Result<usize> {
    let Some(id) = std::env::var("KASS_SECRETS").ok().filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let shared = endpoint.sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&shared);
    let secret = client
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
        .with_context(|| format!("cannot read secret {id} (KASS_SECRETS)"))?;
    let text = secret.secret_string().unwrap_or_default();
    let mut set = 0;
    for (key, value) in secret_fields(&id, text)? {
        if std::env::var_os(&key).is_none() {
            std::env::set_var(&key, value);
            set += 1;
        }
    }
    tracing::info!(secret = %id, variables = set, "provider keys loaded from Secrets Manager");
    Ok(set)
}

/// The string fields of the secret's JSON object, each value registered with the redactor,
/// also those a variable already set overrides: every value in the secret is a secret.
fn secret_fields(id: &str, text: &str) -> Result<Vec<(String, String)>> {
    let fields: serde_json::Map<String, Value> = serde_json::from_str(text)
        .map_err(|_| anyhow::anyhow!("secret {id} (KASS_SECRETS) is not a JSON object"))?;
    Ok(fields
        .into_iter()
        .filter_map(|(key, value)| {
            let value = value.as_str()?.to_string();
            redact::register(&value);
            Some((key, value))
        })
        .collect())
}

fn endpoint_of(config: &KassConfig) -> AwsEndpoint {
    match &config.store {
        StoreConfig::S3(s3) => s3.endpoint(),
        StoreConfig::Local { .. } => AwsEndpoint::default(),
    }
}

/// The embedder function: S3 events (directly, or as SQS messages) in, vectors in Chroma out.
#[derive(Default)]
pub struct EmbedderFunction {
    half: OnceCell<EmbedHalf>,
}

impl EmbedderFunction {
    async fn half(&self) -> Result<&EmbedHalf> {
        self.half
            .get_or_try_init(|| async {
                let config = config_from_env()?;
                let store = build_store(&config.store).await?;
                EmbedHalf::connect(config, store, Shutdown::default()).await
            })
            .await
    }
}

/// Time kept before a fetcher's deadline to drain what was read and save the cursors.
const DRAIN_MARGIN: Duration = Duration::from_secs(60);

/// The fetcher function: on its schedule, sources -> batches in `S3_BUCKET_NAME`.
#[derive(Default)]
pub struct FetcherFunction {
    setup: OnceCell<(KassConfig, Arc<dyn kass_pipeline::store::ObjectStore>)>,
}

/// One Lambda function: what its binary's `main` serves.
pub trait Function: Default + Send + Sync + 'static {
    fn invoke(
        &self,
        event: Value,
        deadline: Option<SystemTime>,
    ) -> impl std::future::Future<Output = Result<Value>> + Send;
}

impl Function for EmbedderFunction {
    /// One invocation. An unreadable event is dead-lettered and answered (retrying cannot
    /// help). A batch file that cannot be read, or chunks that failed because a service was
    /// down, are dead-lettered and then fail the invocation, so Lambda's async retries and its
    /// on-failure destination apply. A single chunk a provider or Chroma refuses is only
    /// dead-lettered: the rest of its batch is stored, and a retry would refuse it again.
    ///
    /// An SQS event (the standard deployment: S3 -> SQS -> event source mapping) is answered
    /// with `batchItemFailures` naming only the messages to deliver again
    /// ([`EmbedHalf::embed_sqs`]); it fails as a whole only when the function cannot start
    /// its work at all (configuration, Chroma unreachable at connection).
    async fn invoke(&self, event: Value, _deadline: Option<SystemTime>) -> Result<Value> {
        let started = Instant::now();
        let half = self.half().await?;
        if let Some(messages) = sqs_messages(&event) {
            let (answer, mut summary) = half.embed_sqs(messages).await;
            summary["seconds"] = json!(started.elapsed().as_secs_f64());
            tracing::info!(summary = %summary, "SQS event done");
            return Ok(serde_json::to_value(answer)?);
        }
        let mut announced = half.announced();
        if let Err(error) = announced.add(event.clone()) {
            dead_letter_event(
                half.store.as_ref(),
                "lambda",
                "invocation",
                &event.to_string(),
                &error,
            )
            .await?;
            return Ok(json!({"batches": 0, "unknown_event": error.to_string()}));
        }
        let keys: Vec<String> = announced.batches.iter().map(|b| b.key.clone()).collect();
        let report = half.embed(announced.batches).await?;
        let summary = json!({
            "batches": keys,
            "stored": report.outputs,
            "dead_letters": report.dead_letters,
            "retryable_dead_letters": report.retryable_dead_letters,
            "failed_batches": report.failed_batches,
            "skipped": announced.skipped,
            "seconds": started.elapsed().as_secs_f64(),
        });
        if report.retryable_dead_letters > 0 || report.failed_batches > 0 {
            anyhow::bail!(
                "{} batch file(s) unreadable, {} chunk(s) not embedded or stored because a service was down (dead letters written) in {:?}: {summary}",
                report.failed_batches,
                report.retryable_dead_letters,
                keys
            );
        }
        Ok(summary)
    }
}

impl Function for FetcherFunction {
    /// One scheduled run. It stops reading a minute before the invocation's deadline, lets
    /// what was read drain into batch files and saves the cursors, so a long backfill makes
    /// progress run after run instead of starting over.
    async fn invoke(&self, _event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let started = Instant::now();
        let shutdown = Shutdown::default();
        let stopper = deadline.map(|deadline| {
            let shutdown = shutdown.clone();
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DRAIN_MARGIN);
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                tracing::warn!("near the deadline: stopping the sources and draining");
                shutdown.trigger();
            })
        });
        let (config, store) = self
            .setup
            .get_or_try_init(|| async {
                let config = config_from_env()?;
                let store = build_store(&config.store).await?;
                anyhow::Ok((config, store))
            })
            .await?;
        let mut batches = Vec::new();
        let mut chunks = 0usize;
        let plan = FetchPlan {
            cursors: load_cursors(config, store.as_ref()).await?,
            allow_deletions: false,
        };
        let report = fetch_half(config, store.clone(), shutdown.clone(), &plan)?
            .run(|batch| {
                chunks += batch.chunk_count;
                batches.push(batch.key);
            })
            .await?;
        if let Some(stopper) = stopper {
            stopper.abort();
        }
        // Every batch is written: only now may the next run skip what this one read.
        save_cursors(&plan.cursors, store.as_ref()).await?;
        record_fetch_success(config, shutdown.is_triggered());
        Ok(json!({
            "complete": !shutdown.is_triggered(),
            "batches": batches,
            "chunks": chunks,
            "dead_letters": report.dead_letters,
            "seconds": started.elapsed().as_secs_f64(),
        }))
    }
}

/// The whole of a Lambda binary's `main`: secrets loaded before the runtime's threads start
/// (setting environment variables is only sound then), then `F` served until the environment
/// stops the process.
pub fn main_for<F: Function>() -> Result<(), lambda_runtime::Error> {
    load_secrets_at_start().map_err(|e| error_text(&e))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let function = Arc::new(F::default());
            serve(move |event, deadline| {
                let function = function.clone();
                async move { function.invoke(event, deadline).await }
            })
            .await
        })
}

/// Runs a handler under the Lambda Runtime API until the environment stops the process.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value, Option<SystemTime>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value>> + Send,
{
    let handle = init();
    let handler = Arc::new(handler);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let handler = handler.clone();
            let handle = handle.clone();
            async move {
                let deadline = (event.context.deadline > 0)
                    .then(|| std::time::UNIX_EPOCH + Duration::from_millis(event.context.deadline));
                let result = handler(event.payload, deadline).await;
                report_metrics(&handle).await;
                // The response leaves the process: redacted like every log line.
                match result {
                    Ok(mut response) => {
                        redact::redact_json(&mut response);
                        Ok(response)
                    }
                    Err(e) => {
                        let text = error_text(&e);
                        tracing::error!(error = %text, "invocation failed");
                        Err(lambda_runtime::Diagnostic {
                            error_type: error_type(&e).to_string(),
                            error_message: text,
                        })
                    }
                }
            }
        },
    ))
    .await
}

/// The `errorType` an invocation's failure reports to Lambda (CloudWatch, a caller, a dead
/// letter queue groups by it): what kind of failure it was, not the Rust type that carried
/// it (`&Box<dyn Error>` by default).
fn error_type(e: &anyhow::Error) -> &'static str {
    use kass_pipeline::FatalError;
    match e.chain().find_map(|c| c.downcast_ref::<FatalError>()) {
        Some(FatalError::Config(_)) => "kass.Configuration",
        Some(FatalError::Store(_)) => "kass.Store",
        Some(FatalError::Stage { .. }) => "kass.StageFailed",
        Some(FatalError::Panicked(_)) => "kass.StagePanicked",
        None => "kass.InvocationFailed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reports_what_kind_it_was() {
        let config = anyhow::Error::new(kass_pipeline::FatalError::Config("bad".into()))
            .context("fetch failed");
        assert_eq!(error_type(&config), "kass.Configuration");
        assert_eq!(
            error_type(&anyhow::anyhow!("other")),
            "kass.InvocationFailed"
        );
    }

    #[test]
    fn every_value_of_the_secret_is_registered_for_redaction() {
        let fields = secret_fields(
            "kass/providers",
            r#"{"VOYAGE_API_KEY": "pa-from-secrets-manager-01", "UNUSED_TOKEN": "tok-never-applied-02", "PORT": 8000}"#,
        )
        .unwrap();
        assert_eq!(fields.len(), 2, "only string fields become variables");
        assert_eq!(
            redact::redact("echo pa-from-secrets-manager-01 and tok-never-applied-02"),
            "echo *** and ***"
        );
    }

    #[test]
    fn a_secret_that_is_not_json_is_refused_without_quoting_it() {
        let error = secret_fields("kass/providers", "pa-plain-text-value-03")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a JSON object"), "{error}");
        assert!(!error.contains("pa-plain-text-value-03"), "{error}");
    }
}

//! The split deployment's world for end-to-end tests: a moto server (S3 with event
//! notifications to SQS), a real Chroma, a local OpenAI-shaped embedding server, a bucket, a
//! queue and a kass.toml over the shipped example data. Included by `#[path]` where needed.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::fake_provider::{FakeOptions, FakeProvider};
use crate::support::{self, kass, run_ok, ChromaServer, MotoServer};
use kass_pipeline::store::{ObjectStore, S3Store, S3StoreConfig};
use serde_json::{json, Value};

pub const BUCKET: &str = "kass-split";
pub const QUEUE: &str = "kass-events";
pub const KEY_ENV: &str = "KASS_SPLIT_TEST_KEY";

/// An S3 ObjectCreated notification of `key` in `bucket`, as S3 sends it to SQS (the key
/// form-encoded, as S3 encodes it).
pub fn s3_event(bucket: &str, key: &str) -> Value {
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2025-10-06T09:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "kass-slack",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": 10, "sequencer": "01"}}}]})
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub moto: MotoServer,
    pub chroma: Option<ChromaServer>,
    pub provider: FakeProvider,
    pub store: S3Store,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub config: PathBuf,
}

impl World {
    pub async fn start(provider: FakeOptions, extra_config: &str) -> Self {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let moto = MotoServer::start();
        let chroma = ChromaServer::start(&dir.join("chroma"));
        let provider = FakeProvider::start(provider).await;
        let store = S3Store::connect(&S3StoreConfig {
            bucket: BUCKET.into(),
            endpoint_url: Some(moto.endpoint()),
            region: Some("us-east-1".into()),
            force_path_style: true,
            max_attempts: 3,
        })
        .await;
        store
            .client()
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let queue_url = sqs
            .create_queue()
            .queue_name(QUEUE)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let slack = dir.join("slack");
        support::copy_dir(
            &support::repo_root().join("examples/data/slack-export"),
            &slack,
        );
        std::fs::write(
            dir.join("wiki.jsonl"),
            r#"{"id": "wiki/deploy", "kind": "text", "text": "Deploys go out on Tuesdays after the change review."}"#,
        )
        .unwrap();
        let config = dir.join("kass.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[batch]
max_chunks = 4
max_wait_ms = 200

[[sources]]
type = "slack_export"
name = "slack"
path = "{slack}"

[[sources]]
type = "jsonl"
name = "wiki"
path = "{wiki}"

[embed.provider]
kind = "openai"
base_url = "{base}"
model = "counted"
dimensions = 8
api_key_env = "{KEY_ENV}"
{chroma}
{extra_config}"#,
                slack = slack.display(),
                wiki = dir.join("wiki.jsonl").display(),
                base = provider.base_url(),
                chroma = chroma.config("split"),
            ),
        )
        .unwrap();
        Self {
            _dir: tmp,
            dir,
            moto,
            chroma: Some(chroma),
            provider,
            store,
            sqs,
            queue_url,
            queue_arn,
            config,
        }
    }

    pub fn kass(&self) -> Command {
        let mut cmd = kass();
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("KASS_S3_BUCKET", BUCKET)
            .env("KASS_S3_ENDPOINT_URL", self.moto.endpoint())
            .env("KASS_S3_FORCE_PATH_STYLE", "true")
            .env(KEY_ENV, "test-key-123")
            .env("KASS_CONFIG", &self.config);
        cmd
    }

    /// A Lambda binary (`bin`) served by a Runtime API (`runtime_env`: its variables) against
    /// this world's bucket on moto, configured by `config_text` (`KASS_CONFIG_TOML`). Output
    /// goes nowhere; tests that read it pipe it themselves.
    pub fn lambda(
        &self,
        bin: &str,
        runtime_env: Vec<(String, String)>,
        config_text: &str,
    ) -> Command {
        let mut cmd = Command::new(bin);
        cmd.envs(runtime_env)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("S3_BUCKET_NAME", BUCKET)
            .env("KASS_S3_ENDPOINT_URL", self.moto.endpoint())
            .env("KASS_S3_FORCE_PATH_STYLE", "true")
            .env("KASS_CONFIG_TOML", config_text)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.kass();
        cmd.args(args);
        tokio::task::spawn_blocking(move || run_ok(&mut cmd))
            .await
            .unwrap()
    }

    /// `kass setup-triggers` announcing `sources` (comma-separated) to the test queue.
    pub async fn setup_triggers(&self, sources: &str) -> Output {
        let target = format!("sqs:{}", self.queue_arn);
        self.run(&[
            "setup-triggers",
            "--bucket",
            BUCKET,
            "--target",
            &target,
            "--sources",
            sources,
        ])
        .await
    }

    /// Announces `keys` again on the queue, in this order: what an S3 or SQS redelivery does.
    pub async fn announce(&self, keys: &[String]) {
        for key in keys {
            self.sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(s3_event(BUCKET, key).to_string())
                .send()
                .await
                .unwrap();
        }
    }

    /// `kass embed --listen` until the queue is empty.
    pub async fn listen_until_idle(&self) -> Output {
        self.run(&[
            "embed",
            "--listen",
            &format!("sqs://{QUEUE}"),
            "--until-idle",
            "--wait",
            "2",
        ])
        .await
    }

    pub async fn batch_keys(&self, source: &str) -> Vec<String> {
        self.store
            .list(&format!("{source}/chunked/"))
            .await
            .unwrap()
    }

    /// Unique chunk ids of the given batches.
    pub async fn chunk_ids(&self, keys: &[String]) -> std::collections::BTreeSet<String> {
        let mut ids = std::collections::BTreeSet::new();
        for key in keys {
            let bytes = self.store.get(key).await.unwrap();
            let batch = kass_pipeline::batch::read_batch(key, &bytes).unwrap();
            ids.extend(batch.chunks.into_iter().map(|c| c.id));
        }
        ids
    }

    pub async fn chroma_count(&self) -> u64 {
        let out = self.run(&["stats"]).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("chunks"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in {text}"))
    }

    /// Adds `lines` (TOML, each ending in a newline) to the provider's table of the config:
    /// rates, windows, `workers`.
    pub fn set_provider_lines(&self, lines: &str) {
        let key_line = format!("api_key_env = \"{KEY_ENV}\"\n");
        let config = std::fs::read_to_string(&self.config).unwrap();
        assert!(config.contains(&key_line), "no provider table in {config}");
        std::fs::write(
            &self.config,
            config.replacen(&key_line, &format!("{key_line}{lines}"), 1),
        )
        .unwrap();
    }

    /// `wiki.jsonl`: `pages` short runbook pages, one chunk each, for a `jsonl` source `wiki`.
    pub fn write_runbook_pages(&self, pages: usize) {
        let docs: String = (0..pages)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"id": format!("wiki/page-{i}"), "kind": "text",
                           "text": format!("Runbook page {i}: restart worker {i} after the deploy of service {}.", i * 7)})
                )
            })
            .collect();
        std::fs::write(self.dir.join("wiki.jsonl"), docs).unwrap();
    }

    /// Waits until every child has exited (panics after `limit`); returns when the queue first
    /// had no message waiting, the moment from which not every worker has work.
    pub async fn wait_for_listeners(
        &self,
        children: &mut [std::process::Child],
        limit: std::time::Duration,
    ) -> Option<std::time::Instant> {
        let deadline = std::time::Instant::now() + limit;
        let mut drained_at = None;
        while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
            assert!(
                std::time::Instant::now() < deadline,
                "listeners did not finish"
            );
            if drained_at.is_none() && self.visible_messages().await == 0 {
                drained_at = Some(std::time::Instant::now());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        drained_at
    }

    /// Messages in the queue, visible or in flight.
    pub async fn queue_depth(&self) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        self.message_count(&[
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
        ])
        .await
    }

    /// Messages waiting to be received (not those a worker holds in flight).
    pub async fn visible_messages(&self) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        self.message_count(&[A::ApproximateNumberOfMessages]).await
    }

    /// The sum of the queue's counts `names`.
    async fn message_count(&self, names: &[aws_sdk_sqs::types::QueueAttributeName]) -> u64 {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        names.iter().map(|a| attrs[a].parse::<u64>().unwrap()).sum()
    }
}

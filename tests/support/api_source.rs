//! What the live API sources' end-to-end tests (`gitlab_api.rs`, `backlog_api.rs`,
//! `discord_api.rs`) share:
//! running `kass` with the source's secret and checking the secret never shows, the config
//! they write, what Chroma holds of a source, and the fetcher Lambda invoked through the
//! Runtime API with the secret only in Secrets Manager. One home, so the sources' tests
//! judge them alike.
//!
//! Included by `#[path]`; the including test declares `mod support`, and for the Lambda
//! helpers `mod runtime_api` and `mod split_world` (with `mod fake_provider`) at its root.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{self, kass, run_ok, ChromaServer};

/// The variable holding the fake embedding provider's key in the configs of
/// [`write_config`]; [`Secret::kass`] sets it.
pub const PROVIDER_KEY_ENV: &str = "KASS_API_SOURCE_TEST_PROVIDER_KEY";

/// The acceptance property every API source is held to, one step sequence of it: after every
/// incremental `kass run` over `changes` (each applied by `apply` before its run, with its
/// step number), Chroma holds of `source` exactly the chunk ids a fresh `kass fetch` of the
/// source as it is then writes. `config(store, collection)` writes a kass.toml over the store
/// of that name under `dir` and returns its path.
#[allow(clippy::too_many_arguments)]
pub async fn chroma_follows_the_source<C: std::fmt::Debug>(
    secret: Secret,
    chroma: &ChromaServer,
    source: &str,
    collection: &str,
    dir: &Path,
    changes: Vec<C>,
    mut apply: impl FnMut(&C, usize),
    config: impl Fn(&str, &str) -> PathBuf,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let live = config("live", collection);
    let mut steps = vec![None];
    steps.extend(changes.into_iter().map(Some));
    for (serial, change) in steps.into_iter().enumerate() {
        if let Some(change) = &change {
            apply(change, serial);
        }
        secret.kass_ok(&["run"], &live).await;
        let fresh_store = format!("fresh-{serial}");
        let fresh = config(&fresh_store, "unused");
        secret.kass_ok(&["fetch"], &fresh).await;
        let expected = fetched_ids(&dir.join(&fresh_store));
        let held = chroma_ids(&chroma.url(), collection, source).await;
        proptest::prop_assert_eq!(
            &held,
            &expected,
            "after step {} ({:?}): Chroma holds other chunks than a fresh fetch",
            serial,
            change
        );
    }
    Ok(())
}

/// The source's secret (a token or API key) and the variable it travels in: set for every
/// `kass` the test runs, and looked for in everything they print.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    pub env: &'static str,
    pub value: &'static str,
}

impl Secret {
    /// `kass ARGS --config CONFIG` with the secret (and the provider's key) set.
    pub fn kass(&self, args: &[&str], config: &Path) -> std::process::Command {
        let mut cmd = kass();
        cmd.env(self.env, self.value)
            .env(PROVIDER_KEY_ENV, "test-key-123")
            .args(args)
            .arg("--config")
            .arg(config);
        cmd
    }

    /// Runs `kass ARGS --config CONFIG`, which must succeed without the secret in its stdout
    /// or stderr; returns its stdout. Blocking: see [`Secret::kass_ok`] inside a runtime.
    pub fn run(&self, args: &[&str], config: &Path) -> String {
        let out = run_ok(&mut self.kass(args, config));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        self.assert_absent(&format!("{stdout}\n{stderr}"), "kass's output");
        stdout
    }

    /// Runs `kass ARGS --config CONFIG`, which must fail without the secret in its stdout or
    /// stderr (a server refusing the secret, its error quoting it back); returns both.
    pub fn run_refused(&self, args: &[&str], config: &Path) -> String {
        let out = self.kass(args, config).output().unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "kass succeeded: {text}");
        self.assert_absent(&text, "kass's output");
        text
    }

    /// [`Secret::run`] off the runtime's threads.
    pub async fn kass_ok(&self, args: &[&str], config: &Path) -> String {
        let (secret, config) = (*self, config.to_path_buf());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            secret.run(&args, &config)
        })
        .await
        .unwrap()
    }

    /// The best hit of `kass query QUERY -k 1 --json`.
    pub fn top_hit(&self, config: &Path, query: &str) -> Value {
        let out = self.run(&["query", query, "-k", "1", "--json"], config);
        serde_json::from_str(out.lines().next().expect("a hit")).unwrap()
    }

    /// Fails the test when `text` (named `what`) holds the secret.
    pub fn assert_absent(&self, text: &str, what: &str) {
        assert!(
            !text.contains(self.value),
            "the secret leaked into {what}: {text}"
        );
    }
}

/// Writes `dir/{name}.toml`: a local store at `dir/{name}`, then `source` (its
/// `[[sources]]` table), then the fake OpenAI-shaped provider at `provider_url` if any
/// (else the default local model embeds), then `chroma`'s `[chroma]` for `collection`.
pub fn write_config(
    dir: &Path,
    name: &str,
    source: &str,
    provider_url: Option<&str>,
    chroma: &ChromaServer,
    collection: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let provider = provider_url.map_or(String::new(), |url| {
        format!(
            "\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{url}\"\nmodel = \"counted\"\ndimensions = 8\napi_key_env = \"{PROVIDER_KEY_ENV}\"\n"
        )
    });
    std::fs::write(
        &path,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n\n{source}\n{provider}{}",
            dir.join(name).display(),
            chroma.config(collection),
        ),
    )
    .unwrap();
    path
}

/// Every chunk id of source `source` in a collection.
pub async fn chroma_ids(url: &str, collection: &str, source: &str) -> BTreeSet<String> {
    let records = support::chroma_get(
        url,
        collection,
        json!({"where": {"source": source}, "include": []}),
    )
    .await
    .unwrap_or_else(|| panic!("Chroma at {url} has no collection {collection}"));
    records["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{records}"))
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

/// Ids of every chunk a `kass fetch` wrote to the local store at `store`.
pub fn fetched_ids(store: &Path) -> BTreeSet<String> {
    support::batch_chunk_ids(store).into_iter().collect()
}

/// Ends a Lambda process and returns what it logged.
pub fn stop(mut child: std::process::Child) -> String {
    use std::io::Read;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    logs
}

/// Stores `{"ENV": "secret"}` in Secrets Manager (moto) as `name`; returns its ARN, what
/// `KASS_SECRETS` names.
pub async fn store_secret(w: &crate::split_world::World, name: &str, secret: Secret) -> String {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(w.moto.endpoint())
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&shared)
        .create_secret()
        .name(name)
        .secret_string(json!({ secret.env: secret.value }).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// One invocation of the fetcher Lambda (a new process: a new Lambda environment) by the
/// schedule event, through a Runtime API, with the secret only in Secrets Manager
/// (`secret_arn`) and its variable unset; returns the outcome and what the process logged,
/// both checked for the secret.
pub async fn invoke_fetcher(
    w: &crate::split_world::World,
    secret: Secret,
    secret_arn: &str,
) -> (crate::runtime_api::Outcome, String) {
    use crate::runtime_api::RuntimeApi;
    let config_text = std::fs::read_to_string(&w.config).unwrap();
    let schedule: Value =
        serde_json::from_str(include_str!("../../examples/events/schedule.json")).unwrap();
    let api = RuntimeApi::start().await;
    let fetcher = w
        .lambda(
            env!("CARGO_BIN_EXE_kass-fetcher"),
            api.env("kass-fetcher"),
            &config_text,
        )
        .env("KASS_SECRETS", secret_arn)
        .env(crate::split_world::KEY_ENV, "unused")
        .env_remove(secret.env)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let outcome = api
        .outcome(&api.invoke(schedule), Duration::from_secs(120))
        .await;
    let logs = stop(fetcher);
    secret.assert_absent(&logs, "the fetcher's logs");
    secret.assert_absent(&format!("{outcome:?}"), "the fetcher's response");
    (outcome, logs)
}

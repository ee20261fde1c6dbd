//! The dashboard and the rules, proven against a real Prometheus: a Prometheus server and a
//! Pushgateway (Debian's packages, unpacked by scripts/install-prometheus.sh) on loopback.
//! Prometheus scrapes a long-running `kass embed --listen` over the shipped sample and a live
//! Slack workspace, and the Pushgateway the fetcher Lambda pushes to after each invocation
//! (Runtime API round trip); the run is done twice, so every counter grows between scrapes.
//! Then every recording rule and every query of every dashboard panel is evaluated through
//! the HTTP API, and the test fails if one errs or returns no number. The fetcher's stdout
//! holds its CloudWatch EMF lines.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "../sources/tests/support/slack_web_api.rs"]
mod slack_web_api;
#[path = "support/split_world.rs"]
mod split_world;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_provider::{Api, FakeOptions};
use runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;
use slack_web_api::{ts, ServerOptions, SlackServer, Workspace};
use support::{free_port, repo_root};

const TOKEN: &str = "xoxb-4444-prometheus-test-token";
const TOKEN_ENV: &str = "KASS_PROMETHEUS_TEST_TOKEN";

/// A child process killed when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with scripts/test.sh, which installs Prometheus's tools")
    })
}

/// Waits until `url` answers 2xx.
async fn wait_ready(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = reqwest::get(url)
            .await
            .is_ok_and(|answer| answer.status().is_success());
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn query(prometheus: &str, expr: &str) -> Value {
    let encoded: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let answer: Value = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query?query={encoded}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer["data"]["result"].clone()
}

/// Whether a query's result holds at least one number (not NaN).
fn has_number(result: &Value) -> bool {
    result.as_array().is_some_and(|series| {
        series.iter().any(|s| {
            s["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| !v.is_nan())
        })
    })
}

/// Every query of the dashboard's panels, its Grafana variables given values.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("deploy/grafana/kass.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "5m")
                .replace("$__range", "5m")
                .replace("$source", ".*");
            queries.push((panel["title"].as_str().unwrap_or("?").to_string(), expr));
        }
    }
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// Recording rules' names, from the rules file.
fn recording_rules() -> Vec<String> {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/rules/kass.yml")).unwrap();
    let rules: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|r| r.trim().to_string())
        .collect();
    assert!(rules.len() >= 5, "{rules:?}");
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_and_rule_has_data_from_a_real_run_and_the_lambda_push() {
    let dir = tempfile::tempdir().unwrap();
    // A live workspace beside the shipped sample; one message the provider refuses, so the
    // dead-letter series exist.
    let mut ws = Workspace::default();
    ws.add_user("U1", "ana");
    ws.add_channel("C1", "dev-help");
    let noon = |days: u64| {
        let day = chrono::Utc::now().date_naive() - chrono::Days::new(days);
        day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp() as u64
    };
    for day in 1..=3 {
        ws.post(
            "dev-help",
            &ts(noon(day), 0),
            "U1",
            &format!("deploy notes {day}"),
        );
    }
    ws.post("dev-help", &ts(noon(2), 5), "U1", "POISONED answer");
    let slack = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;
    let mut provider = FakeOptions::new(Api::OpenAi);
    provider.poison_marker = Some("POISONED".into());
    let w = split_world::World::start(
        provider,
        &format!(
            "\n[[sources]]\ntype = \"slack_api\"\nname = \"live\"\nbase_url = \"{}\"\ntoken_env = \"{TOKEN_ENV}\"\n[sources.rate_limit]\nrate_scale = 1000.0\n",
            slack.base_url()
        ),
    )
    .await;
    // A budget to compare the use with.
    let config_text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "dimensions = 8\n",
        "dimensions = 8\nrequests_per_minute = 6000\ntokens_per_minute = 10000000\n",
        1,
    );
    std::fs::write(&w.config, &config_text).unwrap();
    w.setup_triggers("slack,wiki,live").await;

    // The Pushgateway, the listener (scraped) and Prometheus.
    let gateway_port = free_port();
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let _gateway = Server(
        Command::new(tool("KASS_PUSHGATEWAY"))
            .arg(format!("--web.listen-address=127.0.0.1:{gateway_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let metrics_port = free_port();
    let _listener = Server(
        w.kass()
            .args([
                "embed",
                "--listen",
                &format!("sqs://{}", split_world::QUEUE),
                "--wait",
                "1",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prometheus_port = free_port();
    let prometheus = format!("http://127.0.0.1:{prometheus_port}");
    let prometheus_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: kass-listener\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics_port}\"]\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: [\"127.0.0.1:{gateway_port}\"]\n",
            repo_root().join("deploy/prometheus/rules/kass.yml").display()
        ),
    )
    .unwrap();
    let _prometheus = Server(
        Command::new(tool("KASS_PROMETHEUS"))
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("{prometheus}/-/ready"), Duration::from_secs(60)).await;
    wait_ready(&format!("{gateway}/-/ready"), Duration::from_secs(30)).await;
    // Prometheus hands new targets to its scrapers after up to 5 s: wait until both are
    // scraped, so the counters are seen before they grow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_number(&query(&prometheus, "sum(up) == 2").await) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped both targets"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The fetcher Lambda, pushing after each invocation.
    let api = RuntimeApi::start().await;
    let fetcher = Server(
        w.lambda(
            env!("CARGO_BIN_EXE_kass-fetcher"),
            api.env("kass-fetcher"),
            &config_text,
        )
        .env("KASS_PUSHGATEWAY_URL", &gateway)
        .env(TOKEN_ENV, TOKEN)
        .env(split_world::KEY_ENV, "unused")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let schedule: Value =
        serde_json::from_str(include_str!("../examples/events/schedule.json")).unwrap();
    let mut stored = 0;
    for round in 0..2 {
        if round == 1 {
            slack.with_workspace(|ws| {
                ws.post("dev-help", &ts(noon(0), 1), "U1", "a new status update")
            });
        }
        let id = api.invoke(schedule.clone());
        match api.outcome(&id, Duration::from_secs(120)).await {
            Outcome::Response(r) => assert!(r["batches"].as_array().is_some(), "{r}"),
            other => panic!("fetcher failed: {other:?}"),
        }
        // The listener embeds what the events announce.
        let mut expected = 0;
        for source in ["slack", "wiki", "live"] {
            let keys = w.batch_keys(source).await;
            expected += w.chunk_ids(&keys).await.len() as u64;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            stored = w.chroma_count().await;
            // One chunk of `live` is refused (dead-lettered).
            if stored + 1 >= expected {
                break;
            }
            assert!(Instant::now() < deadline, "{stored} of {expected} stored");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Scrapes between the rounds, so every counter grows in Prometheus's eyes.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert!(stored > 0);

    // The Lambda's push, grouped by function and instance.
    let pushed = reqwest::get(format!("{gateway}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let batches_line = pushed
        .lines()
        .find(|l| l.starts_with("kass_batches_written_total{") && l.contains("source=\"live\""))
        .unwrap_or_else(|| panic!("no pushed batches of `live`:\n{pushed}"));
    for label in [
        "job=\"kass\"",
        "function=\"kass-fetcher\"",
        "instance=\"2025_10_06___LATEST_test\"",
    ] {
        assert!(batches_line.contains(label), "{label} in {batches_line}");
    }

    // Every recording rule, every panel: data, no error.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut empty = Vec::new();
    for rule in recording_rules() {
        if !has_number(&query(&prometheus, &rule).await) {
            empty.push(format!("recording rule {rule}"));
        }
    }
    for (panel, expr) in dashboard_queries() {
        if !has_number(&query(&prometheus, &expr).await) {
            empty.push(format!("panel {panel:?}: {expr}"));
        }
    }
    assert!(empty.is_empty(), "no data for:\n{}", empty.join("\n"));
    // Every chunk loaded is accounted for: stored, skipped as stored, or dead-lettered.
    let balance = query(
        &prometheus,
        "sum(kass_stage_sent_items_total{job=\"kass-listener\",stage=\"batch_loader\"}) - (sum(kass_chroma_upserted_total{job=\"kass-listener\"}) + sum(kass_chroma_skipped_total{job=\"kass-listener\"}) + sum(kass_dead_letters_total{job=\"kass-listener\",stage=~\"embed|chroma_sink|skip_stored\"}))",
    )
    .await;
    assert_eq!(balance[0]["value"][1], "0", "{balance}");
    // The alert on dead letters fires from the refused chunk.
    let alerts = query(
        &prometheus,
        "ALERTS{alertname=\"KassDeadLettersIncreasing\"}",
    )
    .await;
    assert!(has_number(&alerts), "{alerts}");

    // The fetcher's EMF lines: one per source and one for the function, per invocation.
    let mut fetcher = fetcher;
    let _ = fetcher.0.kill();
    let mut stdout = String::new();
    use std::io::Read;
    fetcher
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    let live: Vec<&Value> = emf.iter().filter(|d| d["source"] == "live").collect();
    assert_eq!(live.len(), 2, "one per invocation: {stdout}");
    assert_eq!(live[0]["function"], "kass-fetcher");
    assert_eq!(live[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "kass");
    assert!(live[0]["kass_batches_written_total"].as_f64().unwrap() >= 1.0);
    assert_eq!(
        live[1]["kass_source_runs_completed_total"], 1.0,
        "what the second added"
    );
}

//! What a Lambda invocation reports of its metrics. A Lambda cannot be scraped, so after each
//! invocation:
//!
//! - one CloudWatch Embedded Metric Format line per source (and one for the function as a whole)
//!   goes to stdout, which CloudWatch Logs turns into metrics in namespace `kass` with no other
//!   infrastructure: counters as what they added during the invocation, gauges as their value,
//!   the latency histogram as the invocation's mean;
//! - when `KASS_PUSHGATEWAY_URL` is set, the whole Prometheus exposition is pushed to that
//!   Pushgateway, grouped by `job="kass"`, `function` and `instance` (the execution
//!   environment), so concurrent instances never overwrite each other and a Prometheus scraping
//!   the gateway sees every instance's cumulative counters.
//!
//! A failed push is logged, never fails the invocation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use kass_pipeline::telemetry::LATENCY_TO_SEARCHABLE;

/// The Pushgateway's base URL (`http://pushgateway:9091`).
pub const PUSHGATEWAY_VAR: &str = "KASS_PUSHGATEWAY_URL";
/// CloudWatch namespace of the EMF metrics.
pub const NAMESPACE: &str = "kass";

/// One series of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The series of an exposition (comments and malformed lines skipped).
pub fn parse_exposition(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (series, BTreeMap::new()),
            };
            Some(Series {
                name: name.to_string(),
                labels,
                value,
            })
        })
        .collect()
}

/// `a="x",b="y"` (values escaped as the exposition format escapes them).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

/// Turns successive expositions into per-invocation EMF documents: remembers the counters'
/// totals, so each invocation reports what it added.
#[derive(Debug, Default)]
pub struct EmfReporter {
    last: BTreeMap<String, f64>,
}

impl EmfReporter {
    /// The EMF documents of this invocation, one per source plus one for the function.
    pub fn documents(&mut self, exposition: &str, function: &str, now_ms: i64) -> Vec<Value> {
        // source (None: the function as a whole) -> metric -> (value, unit)
        let mut groups: BTreeMap<Option<String>, BTreeMap<String, (f64, &str)>> = BTreeMap::new();
        let mut latency: BTreeMap<Option<String>, (f64, f64)> = BTreeMap::new();
        for series in parse_exposition(exposition) {
            if !series.name.starts_with("kass_") {
                continue;
            }
            let key = format!("{}{:?}", series.name, series.labels);
            let source = series.labels.get("source").cloned();
            let latency_part = series
                .name
                .strip_prefix(LATENCY_TO_SEARCHABLE)
                .filter(|p| *p == "_sum" || *p == "_count");
            if let Some(part) = latency_part {
                let added = self.added(key, series.value);
                let entry = latency.entry(source).or_default();
                if part == "_sum" {
                    entry.0 += added;
                } else {
                    entry.1 += added;
                }
                continue;
            }
            if series.name.ends_with("_bucket")
                || series.name.ends_with("_sum")
                || series.name.ends_with("_count")
                || series.labels.contains_key("quantile")
                || !summable(&series)
            {
                continue;
            }
            let (value, unit) = if series.name.ends_with("_total") {
                (self.added(key, series.value), "Count")
            } else {
                (series.value, "None")
            };
            let metric = groups
                .entry(source)
                .or_default()
                .entry(series.name)
                .or_insert((0.0, unit));
            if unit == "Count" {
                metric.0 += value;
            } else {
                metric.0 = metric.0.max(value);
            }
        }
        for (source, (sum, count)) in latency {
            if count > 0.0 {
                groups
                    .entry(source)
                    .or_default()
                    .insert(LATENCY_TO_SEARCHABLE.to_string(), (sum / count, "Seconds"));
            }
        }
        groups
            .into_iter()
            .filter(|(_, metrics)| !metrics.is_empty())
            .map(|(source, metrics)| emf_document(function, source.as_deref(), &metrics, now_ms))
            .collect()
    }

    /// What a counter added since the last invocation.
    fn added(&mut self, key: String, total: f64) -> f64 {
        let before = self.last.insert(key, total).unwrap_or(0.0);
        (total - before).max(0.0)
    }
}

/// Whether a series may be added up with its siblings (all labels but `source` dropped) and
/// still mean one thing. Counters partitioned by outcome (status, stage of a dead letter,
/// reason) add up to a total; counters counting the same items twice (`kind`: estimated and
/// billed tokens; a stage's items, counted again by every stage) and gauges of separate
/// things (per channel, per provider, per queue state) do not, and are left to Prometheus.
fn summable(series: &Series) -> bool {
    let extra = || series.labels.keys().any(|k| k != "source");
    if series.name.ends_with("_total") {
        !series.labels.contains_key("kind") && !series.name.starts_with("kass_stage_")
    } else {
        !extra()
    }
}

fn emf_document(
    function: &str,
    source: Option<&str>,
    metrics: &BTreeMap<String, (f64, &str)>,
    now_ms: i64,
) -> Value {
    // A source's metrics count for the function as a whole too (alarms and totals need no
    // list of sources), and per source.
    let mut dimensions = vec![vec!["function"]];
    let mut document = Map::new();
    document.insert("function".into(), json!(function));
    if let Some(source) = source {
        dimensions.push(vec!["function", "source"]);
        document.insert("source".into(), json!(source));
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, (_, unit))| json!({"Name": name, "Unit": unit}))
        .collect();
    for (name, (value, _)) in metrics {
        document.insert(name.clone(), json!(value));
    }
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(document)
}

/// `{base}/metrics/job/kass/function/{function}/instance/{instance}`: the group this
/// instance's metrics replace on each push. Label values go into path segments, so anything
/// but letters, digits, `.`, `_` and `-` (a log stream name holds `/`, `[`, `$`) becomes `_`.
pub fn push_url(base: &str, function: &str, instance: &str) -> String {
    let segment = |s: &str| -> String {
        let cleaned: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if cleaned.is_empty() {
            "_".to_string()
        } else {
            cleaned
        }
    };
    format!(
        "{}/metrics/job/kass/function/{}/instance/{}",
        base.trim_end_matches('/'),
        segment(function),
        segment(instance)
    )
}

/// Pushes `exposition` to the Pushgateway at `base` (PUT: the group is replaced).
pub async fn push(base: &str, function: &str, instance: &str, exposition: String) {
    let url = push_url(base, function, instance);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a plain client");
    let result = client
        .put(&url)
        .header("content-type", "text/plain; version=0.0.4")
        .body(exposition)
        .send()
        .await;
    match result {
        Ok(answer) if answer.status().is_success() => {
            tracing::debug!(url, "metrics pushed to the Pushgateway");
        }
        Ok(answer) => {
            tracing::warn!(url, status = %answer.status(), "the Pushgateway refused the metrics")
        }
        Err(e) => tracing::warn!(url, error = %e, "cannot push metrics to the Pushgateway"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# TYPE kass_chroma_upserted_total counter
kass_chroma_upserted_total{source="slack"} 7
kass_chroma_upserted_total{source="wiki"} 2
kass_dead_letters_total{stage="embed",error_type="embed_refused"} 1
kass_source_backlog_scopes{source="slack"} 3
kass_latency_to_searchable_seconds_bucket{source="slack",le="1"} 0
kass_latency_to_searchable_seconds_sum{source="slack"} 14
kass_latency_to_searchable_seconds_count{source="slack"} 7
kass_stage_processing_seconds{stage="embed",quantile="0.5"} 0.1
"#;

    #[test]
    fn labels_are_read_with_their_escapes() {
        let series = parse_exposition(r#"m{a="x,y",b="q\"uote"} 1.5"#);
        assert_eq!(series[0].labels["a"], "x,y");
        assert_eq!(series[0].labels["b"], "q\"uote");
        assert_eq!(series[0].value, 1.5);
    }

    #[test]
    fn each_invocation_reports_what_it_added_per_source() {
        let mut emf = EmfReporter::default();
        let first = emf.documents(EXPOSITION, "kass-embedder", 1);
        let slack = first.iter().find(|d| d["source"] == "slack").unwrap();
        assert_eq!(slack["kass_chroma_upserted_total"], 7.0);
        assert_eq!(slack["kass_source_backlog_scopes"], 3.0);
        assert_eq!(slack["kass_latency_to_searchable_seconds"], 2.0, "the mean");
        assert_eq!(
            slack["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function"], ["function", "source"]])
        );
        let whole = first.iter().find(|d| d.get("source").is_none()).unwrap();
        assert_eq!(whole["kass_dead_letters_total"], 1.0);
        assert_eq!(whole["_aws"]["CloudWatchMetrics"][0]["Namespace"], "kass");
        assert_eq!(
            whole["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function"]])
        );

        let next = EXPOSITION
            .replace("source=\"slack\"} 7", "source=\"slack\"} 10")
            .replace("_sum{source=\"slack\"} 14", "_sum{source=\"slack\"} 20")
            .replace("_count{source=\"slack\"} 7", "_count{source=\"slack\"} 10");
        let second = emf.documents(&next, "kass-embedder", 2);
        let slack = second.iter().find(|d| d["source"] == "slack").unwrap();
        assert_eq!(
            slack["kass_chroma_upserted_total"], 3.0,
            "only what was added"
        );
        assert_eq!(slack["kass_latency_to_searchable_seconds"], 2.0);
        let wiki = second.iter().find(|d| d["source"] == "wiki").unwrap();
        assert_eq!(wiki["kass_chroma_upserted_total"], 0.0);
    }

    #[test]
    fn series_that_do_not_add_up_are_left_out() {
        let mut emf = EmfReporter::default();
        let text = r#"kass_embed_tokens_total{provider="p",kind="estimated"} 10
kass_embed_tokens_total{provider="p",kind="billed"} 9
kass_stage_sent_items_total{stage="embed",source="s"} 5
kass_embed_requests_total{provider="p",status="ok"} 3
kass_embed_requests_total{provider="p",status="429"} 1
kass_channel_depth_items{channel="embed"} 4
"#;
        let documents = emf.documents(text, "f", 0);
        let whole = documents
            .iter()
            .find(|d| d.get("source").is_none())
            .unwrap();
        assert_eq!(whole["kass_embed_requests_total"], 4.0, "outcomes add up");
        assert!(whole.get("kass_embed_tokens_total").is_none());
        assert!(whole.get("kass_channel_depth_items").is_none());
        assert!(documents
            .iter()
            .all(|d| d.get("kass_stage_sent_items_total").is_none()));
    }

    #[test]
    fn the_push_group_names_function_and_instance() {
        assert_eq!(
            push_url("http://gw:9091/", "kass-fetcher", "2026/11/30/[$LATEST]ab"),
            "http://gw:9091/metrics/job/kass/function/kass-fetcher/instance/2026_11_30___LATEST_ab"
        );
    }
}

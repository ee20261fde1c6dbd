//! Export to API continuity: the same messages read from a workspace export (`slack_export`)
//! and through the Web API (`slack_api`) make the same documents and the same chunk ids, so a
//! team that backfilled from an export continues through the API without re-embedding.
//!
//! The messages are real ones: the project's fixture export, and the shared real sample where
//! it exists. They are loaded into the local Web API server with every raw field (files,
//! attachments, bot posts, profiles, edits), and the server writes them back out as an export,
//! so both sources read exactly the same messages, each as Slack would give it.

mod common;
#[path = "support/slack_web_api.rs"]
mod slack_web_api;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::export::{chunk_all, transform_all};
use common::test_data::{fixture, shared_data};
use kass_sources::slack_api::SlackApiConfig;
use kass_sources::slack_export::SlackExportConfig;
use kass_sources::BuildSource;
use kass_stages::chunking::ChunkingConfig;
use serde_json::{Map, Value};
use slack_web_api::{Message, ServerOptions, SlackServer, Workspace, SERVED_FIELDS};

const TOKEN: &str = "xoxb-2222-continuity-test-token";

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

/// An export's users, channels and messages as a server workspace. Left out: replies whose
/// parent the export lacks (the Web API cannot serve a thread without its parent) and
/// messages without a `ts` (malformed: the export source dead-letters them).
fn workspace_from_export(export: &Path) -> Workspace {
    let mut ws = Workspace::default();
    for user in read_json(&export.join("users.json")).as_array().unwrap() {
        let profile = &user["profile"];
        let added = ws.add_user(&text(user, "id"), &text(user, "name"));
        added.real_name = Some(text(profile, "real_name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| text(user, "real_name"));
        added.display_name = text(profile, "display_name");
    }
    for channel in read_json(&export.join("channels.json")).as_array().unwrap() {
        let name = text(channel, "name");
        let folder = export.join(&name);
        if !folder.is_dir() {
            continue;
        }
        ws.add_channel(&text(channel, "id"), &name);
        let mut days: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        days.sort();
        let mut messages = Vec::new();
        for day in days {
            messages.extend(read_json(&day).as_array().cloned().unwrap_or_default());
        }
        let top_level: BTreeSet<String> = messages
            .iter()
            .filter(|m| m["thread_ts"].is_null() || m["thread_ts"] == m["ts"])
            .map(|m| text(m, "ts"))
            .collect();
        for raw in messages {
            let has_ts = raw["ts"].as_str().is_some_and(|ts| {
                ts.split('.').all(|p| p.bytes().all(|b| b.is_ascii_digit())) && !ts.is_empty()
            });
            if !has_ts {
                continue;
            }
            let thread_ts = raw["thread_ts"].as_str().map(str::to_string);
            if thread_ts.as_ref().is_some_and(|t| !top_level.contains(t)) {
                continue;
            }
            let extra: Map<String, Value> = raw
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !SERVED_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut message =
                Message::new(&text(&raw, "ts"), &text(&raw, "user"), &text(&raw, "text"))
                    .with_extra(Value::Object(extra));
            message.thread_ts = thread_ts.filter(|t| *t != message.ts);
            message.subtype = raw["subtype"].as_str().map(str::to_string);
            message.edited_ts = raw["edited"]["ts"].as_str().map(str::to_string);
            ws.post_message(&name, message);
        }
    }
    ws
}

/// Document id -> the document as JSON (messages, authors, metadata), and every chunk id, of
/// what a source made of the workspace.
async fn chunked(
    records: &[kass_pipeline::RawRecord],
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let documents = transform_all(records).await;
    let chunks = chunk_all(&documents, ChunkingConfig::default());
    (
        documents
            .iter()
            .map(|d| (d.id.clone(), serde_json::to_string_pretty(d).unwrap()))
            .collect(),
        chunks.into_iter().map(|c| c.id).collect(),
    )
}

async fn assert_continuity(export: &Path) {
    let ws = workspace_from_export(export);
    let written = tempfile::tempdir().unwrap();
    ws.write_export(written.path());
    let server = SlackServer::start(ws, ServerOptions::new(TOKEN)).await;

    let mut from_export = SlackExportConfig::new(written.path());
    // One document per thread, however late its replies (the API always has them whole).
    from_export.thread_grace_days = 100_000;
    let export_run = common::run_source(from_export.build().unwrap(), "slack_export").await;

    std::env::set_var("KASS_CONTINUITY_TOKEN", TOKEN);
    let mut from_api = SlackApiConfig::new(server.base_url());
    from_api.token_env = "KASS_CONTINUITY_TOKEN".into();
    from_api.rate_limit.rate_scale = 1_000.0;
    let api_run = common::run_source(from_api.build().unwrap(), "slack_api").await;
    assert_eq!(export_run.dead_letters.len(), 0);
    assert_eq!(api_run.dead_letters.len(), 0);

    let (export_documents, export_chunks) = chunked(&export_run.records).await;
    let (api_documents, api_chunks) = chunked(&api_run.records).await;
    assert!(export_documents.len() > 3, "{}", export.display());
    let ids = |d: &BTreeMap<String, String>| d.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(ids(&api_documents), ids(&export_documents), "document ids");
    for (id, text) in &export_documents {
        assert_eq!(&api_documents[id], text, "document {id}");
    }
    assert_eq!(api_chunks, export_chunks, "chunk ids");
}

#[tokio::test]
async fn the_fixture_export_and_the_api_make_the_same_chunks() {
    assert_continuity(&fixture("slack-export")).await;
}

#[tokio::test]
async fn the_real_sample_and_the_api_make_the_same_chunks() {
    let Some(export) = shared_data("slack-export-sample") else {
        return;
    };
    assert_continuity(&export).await;
}

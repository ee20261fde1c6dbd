//! `kass status`: one screen for an operator, read from the store and Chroma. Per source: its
//! last fetch (when its cursor was saved), its backlog and where its cursor stands; dead
//! letters by stage, failure kind and item kind; the collection's count per source and its
//! model. What cannot be reached (Chroma down) is said, not fatal: status is what one runs
//! when something is wrong.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use kass::config::KassConfig;
use kass::source_config::SourceConfig;
use kass_pipeline::dead_letter;
use kass_pipeline::store::{build_store, ObjectStore};
use kass_sources::api::scope_status::ScopeStatus;
use kass_sources::cursor::CursorState;
use kass_sources::slack_api::SyncStatus;
use kass_sources::{backlog, gitlab_api};

use super::query::collection_counts;
use crate::ConfigArg;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print one JSON object instead of the screen.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// One source's standing.
#[derive(Debug, Serialize)]
struct SourceStatus {
    name: String,
    kind: &'static str,
    /// When its last fetch saved the cursor.
    last_fetch: Option<DateTime<Utc>>,
    /// Inputs a file-based source has recorded as read.
    inputs_read: usize,
    /// An API source's channels, backfill and position.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<SyncStatus>,
    /// Another API source's scopes (projects, ...) and what it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Scopes>,
}

/// The scopes of an API source on the shared driver, with what they are called.
#[derive(Debug, Serialize)]
struct Scopes {
    kind: &'static str,
    #[serde(flatten)]
    status: ScopeStatus,
}

/// Dead letters of one stage, failure kind and item kind.
#[derive(Debug, Serialize)]
struct LetterGroup {
    stage: String,
    error_type: String,
    item_kind: String,
    count: usize,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let mut config = KassConfig::load(&args.config.config)?;
    // Status reports an unreachable Chroma; it does not wait minutes for it.
    config.chroma.retry.max_attempts = config.chroma.retry.max_attempts.min(2);
    let store = build_store(&config.store).await?;
    let mut sources = Vec::new();
    for source in &config.sources {
        sources.push(source_status(store.as_ref(), source).await?);
    }
    let letters = letter_groups(store.as_ref()).await?;
    let collection = collection_counts(&config).await;
    if args.json {
        let collection = match &collection {
            Ok(c) => json!({
                "name": config.chroma.collection,
                "url": c.url,
                "model": c.model,
                "chunks": c.total,
                "per_source": c.per_source,
            }),
            Err(e) => json!({
                "name": config.chroma.collection,
                "error": kass::logging::error_text(e),
            }),
        };
        let out = json!({
            "store": store.location(""),
            "sources": sources,
            "dead_letters": {
                "total": letters.iter().map(|g| g.count).sum::<usize>(),
                "groups": letters,
            },
            "collection": collection,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("store        {}", store.location(""));
    println!("sources");
    for s in &sources {
        println!("  {:<14} {:<13} {}", s.name, s.kind, describe(s));
    }
    let total: usize = letters.iter().map(|g| g.count).sum();
    println!("dead letters {total}");
    for g in &letters {
        println!(
            "  {:<14} {:<22} {:<12} {}",
            g.stage, g.error_type, g.item_kind, g.count
        );
    }
    match collection {
        Ok(c) => {
            println!(
                "collection   {} ({}): {} chunks, model {}",
                config.chroma.collection, c.url, c.total, c.model
            );
            for (source, count) in c.per_source {
                println!("  {source:<14} {count}");
            }
        }
        Err(e) => println!(
            "collection   {}: unreachable: {}",
            config.chroma.collection,
            kass::logging::error_text(&e)
        ),
    }
    Ok(())
}

async fn source_status(store: &dyn ObjectStore, source: &SourceConfig) -> Result<SourceStatus> {
    let cursor = CursorState::read(store, source.name()).await?;
    let kind = source.kind();
    let sync = match (source, &cursor) {
        (SourceConfig::SlackApi(_), Some(cursor)) => Some(SyncStatus::of(cursor)),
        (SourceConfig::SlackApi(_), None) => Some(SyncStatus::default()),
        _ => None,
    };
    let empty = CursorState::default();
    let scopes = match source {
        SourceConfig::Gitlab(_) => Some(Scopes {
            kind: "projects",
            status: gitlab_api::status(cursor.as_ref().unwrap_or(&empty)),
        }),
        SourceConfig::Backlog(_) => Some(Scopes {
            kind: "projects",
            status: backlog::status(cursor.as_ref().unwrap_or(&empty)),
        }),
        _ => None,
    };
    Ok(SourceStatus {
        name: source.name().to_string(),
        kind,
        last_fetch: cursor.as_ref().and_then(|c| c.saved_at),
        inputs_read: cursor.as_ref().map_or(0, |c| c.inputs.len()),
        sync,
        scopes,
    })
}

/// `last fetch 2026-11-30 02:44:10 UTC (3m ago); 12 channels, 2 in backfill, ...`.
fn describe(s: &SourceStatus) -> String {
    let when = match s.last_fetch {
        Some(at) => {
            let ago = (Utc::now() - at).num_seconds().max(0);
            format!(
                "last fetch {} ({} ago)",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                ago_text(ago)
            )
        }
        None => "never fetched (no cursor in the store)".to_string(),
    };
    let at = |t: Option<i64>| {
        t.and_then(|t| DateTime::from_timestamp(t, 0))
            .map_or("-".to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string())
    };
    let position = match (&s.sync, &s.scopes) {
        (_, Some(Scopes { kind, status })) => {
            let unreadable = match status.unreadable {
                0 => String::new(),
                n => format!(", {n} unreadable saved states"),
            };
            format!(
                "{} {kind}, {} never read completely, read up to {}, {} documents{unreadable}",
                status.scopes,
                status.in_backlog,
                at(status.read_until),
                status.documents
            )
        }
        (Some(sync), None) => {
            format!(
                "{} channels, {} in backfill (reached {}), read up to {}, {} documents, {} threads watched",
                sync.channels,
                sync.in_backfill,
                at(sync.backfill_reached),
                at(sync.read_until),
                sync.documents,
                sync.watched_threads
            )
        }
        (None, None) => format!("{} inputs read", s.inputs_read),
    };
    format!("{when}; {position}")
}

fn ago_text(seconds: i64) -> String {
    match seconds {
        0..=119 => format!("{seconds}s"),
        120..=7199 => format!("{}m", seconds / 60),
        7200..=172_799 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Every dead letter, grouped.
async fn letter_groups(store: &dyn ObjectStore) -> Result<Vec<LetterGroup>> {
    let mut groups: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (_, letter) in dead_letter::list(store).await? {
        let kind = serde_json::to_value(letter.item_kind)?
            .as_str()
            .unwrap_or("other")
            .to_string();
        *groups
            .entry((letter.stage, letter.error_type, kind))
            .or_default() += 1;
    }
    Ok(groups
        .into_iter()
        .map(|((stage, error_type, item_kind), count)| LetterGroup {
            stage,
            error_type,
            item_kind,
            count,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(ago_text(42), "42s");
        assert_eq!(ago_text(600), "10m");
        assert_eq!(ago_text(3 * 3600), "3h");
        assert_eq!(ago_text(3 * 86_400), "3d");
    }
}

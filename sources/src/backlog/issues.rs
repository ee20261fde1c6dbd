//! A project's issues (`include` has `issues`): one document per issue, kind `issue`, its
//! description the text and every comment with content a message (change-log-only comments
//! are dropped), so the chunker's issue strategy puts the title in every chunk and cuts at
//! comments.
//!
//! Each run lists the issues updated since the day before the last complete run (Backlog's
//! `updatedSince` takes a date only) and reads again, with all their comments, those whose
//! `updated` time it does not hold yet and those the activity feed names. Every
//! `reconcile_days` the listing is not limited by date: an issue the project held that the
//! whole listing does not return is asked for alone, and only Backlog's 404 makes it a
//! tombstone (an offset listing can skip a record when another is deleted while it pages).

use std::collections::BTreeSet;

use kass_pipeline::{Document, DocumentKind, Message, MetaValue, Metadata, RawRecord};

use super::activity::Feed;
use super::project_read::{id_of, Part, ProjectRead};
use super::state::ProjectState;
use super::web::{Comment, Issue};
use crate::api::scope_driver::{tombstone, Stop};

const KIND: &str = "issues";

/// The document id of an issue: `{project key}/issues/{number}`.
pub(super) fn document_id(key: &str, key_id: u64) -> String {
    format!("{key}/{KIND}/{key_id}")
}

/// Whether `document_id` is an issue of the project `key`.
pub(super) fn is_issue(key: &str, document_id: &str) -> bool {
    id_of(key, KIND, document_id).is_some()
}

/// Reads the issues updated since `since` (a date) and those the feed names; sends those
/// changed; returns the issues gone (from the feed, and from a whole listing, `reconcile`).
pub(super) async fn refresh(
    read: &ProjectRead<'_>,
    feed: &Feed,
    since: Option<&str>,
    reconcile: bool,
    state: &mut ProjectState,
) -> Result<Part, Stop> {
    let mut part = Part::default();
    let listing = read.web.issues(read.project.id, since).await?;
    let mut listed = BTreeSet::new();
    for issue in &listing {
        read.go_on()?;
        listed.insert(issue.key_id);
        if feed.deleted_issues.contains(&issue.key_id) {
            continue;
        }
        if read.since.is_some_and(|s| issue.updated < s) {
            continue;
        }
        let id = document_id(read.key, issue.key_id);
        let updated = issue.updated.to_rfc3339();
        let unchanged =
            read.previous.seen.get(&id) == Some(&updated) && read.previous.documents.contains(&id);
        if unchanged && !feed.touched.contains(&issue.key_id) {
            continue;
        }
        send(read, issue, state, &mut part).await?;
    }
    // Named by the feed but not in the listing (a comment edited without moving `updated`
    // past the listing's date): asked for alone.
    for &number in feed.touched.iter().filter(|n| !listed.contains(n)) {
        read.go_on()?;
        let key = format!("{}-{number}", read.key);
        match read.web.issue(&key).await? {
            Some(issue) => send(read, &issue, state, &mut part).await?,
            None => {
                let id = document_id(read.key, number);
                if read.previous.documents.contains(&id) {
                    part.gone.push(tombstone(&id, "deleted"));
                }
            }
        }
    }
    for &number in &feed.deleted_issues {
        let id = document_id(read.key, number);
        if read.previous.documents.contains(&id) {
            part.gone.push(tombstone(&id, "deleted"));
        }
    }
    // Deletions the guard withheld last run are past the feed's cursor now: each is asked for
    // alone again, as is (with `reconcile`) every issue held that the whole listing lacks.
    // Only Backlog's 404 deletes.
    let gone: BTreeSet<&str> = part.gone.iter().map(|t| t.document_id.as_str()).collect();
    let to_verify: Vec<(String, u64)> = read
        .previous
        .documents
        .iter()
        .filter(|d| !gone.contains(d.as_str()))
        .filter(|d| reconcile || read.previous.withheld.contains(*d))
        .filter_map(|d| {
            let number: u64 = id_of(read.key, KIND, d)?.parse().ok()?;
            (!listed.contains(&number)).then(|| (d.clone(), number))
        })
        .collect();
    for (id, number) in to_verify {
        read.go_on()?;
        if read
            .web
            .issue(&format!("{}-{number}", read.key))
            .await?
            .is_none()
        {
            part.gone.push(tombstone(&id, "deleted"));
        }
    }
    Ok(part)
}

/// Reads the issue's comments and sends it.
async fn send(
    read: &ProjectRead<'_>,
    issue: &Issue,
    state: &mut ProjectState,
    part: &mut Part,
) -> Result<(), Stop> {
    let comments = read.web.comments(&issue.issue_key).await?;
    let record = issue_record(read, issue, &comments);
    let id = record.document_id().to_string();
    read.send.send(record).await?;
    part.emitted += 1;
    state.documents.insert(id.clone());
    state.seen.insert(id, issue.updated.to_rfc3339());
    Ok(())
}

/// The document of `issue` and its `comments`.
pub(super) fn issue_record(
    read: &ProjectRead<'_>,
    issue: &Issue,
    comments: &[Comment],
) -> RawRecord {
    let messages = comments
        .iter()
        .filter_map(|c| {
            let content = c.content.as_deref().filter(|t| !t.trim().is_empty())?;
            Some(Message {
                id: c.id.to_string(),
                author: c
                    .created_user
                    .as_ref()
                    .map_or_else(|| "unknown".to_string(), |u| u.name.clone()),
                ts: c.created,
                text: read.readable(content),
                thread_id: None,
                edited: c.updated.is_some_and(|u| u != c.created),
            })
        })
        .collect();
    let names =
        |list: &[super::web::Named]| MetaValue::List(list.iter().map(|n| n.name.clone()).collect());
    let mut metadata = Metadata::new();
    metadata.insert("project".into(), read.key.into());
    metadata.insert("issue_key".into(), issue.issue_key.as_str().into());
    for (key, value) in [
        ("issue_type", &issue.issue_type),
        ("status", &issue.status),
        ("priority", &issue.priority),
        ("assignee", &issue.assignee),
        ("author", &issue.created_user),
    ] {
        if let Some(value) = value {
            metadata.insert(key.into(), value.name.as_str().into());
        }
    }
    metadata.insert("categories".into(), names(&issue.category));
    metadata.insert("milestones".into(), names(&issue.milestone));
    metadata.insert("created".into(), issue.created.to_rfc3339().into());
    metadata.insert("updated".into(), issue.updated.to_rfc3339().into());
    metadata.insert(
        "created_ts".into(),
        MetaValue::Int(issue.created.timestamp()),
    );
    metadata.insert(
        "updated_ts".into(),
        MetaValue::Int(issue.updated.timestamp()),
    );
    let url = read.link(&format!("view/{}", issue.issue_key));
    metadata.insert("url".into(), url.as_str().into());
    RawRecord::Document(Document {
        id: document_id(read.key, issue.key_id),
        source: read.source.to_string(),
        kind: DocumentKind::Issue,
        title: Some(format!("{} {}", issue.issue_key, issue.summary)),
        text: issue
            .description
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| read.readable(d)),
        messages,
        url: Some(url),
        created_at: Some(issue.created),
        updated_at: Some(issue.updated),
        metadata,
    })
}

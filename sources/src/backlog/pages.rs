//! A project's wiki pages (`include` has `wikis`) and documents (`documents`): one document
//! each, kind `wiki`, chunked by the prose strategy (title in every chunk, cuts at headings).
//!
//! Both listings are complete every run (the wiki's in one request, the documents' paged by
//! offset) and carry each page's `updated` time: a page whose time the source holds costs
//! nothing more; a new or edited one is read alone for its content. A page the listing no
//! longer holds (or the feed says deleted) is a tombstone.

use std::collections::BTreeSet;

use kass_pipeline::{Document, DocumentKind, MetaValue, RawRecord};

use super::project_read::{id_of, Part, ProjectRead};
use super::state::ProjectState;
use crate::api::scope_driver::{tombstone, Stop};

/// Wiki pages (`wikis`) or documents (`documents`): the second segment of their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageKind {
    Wiki,
    Document,
}

impl PageKind {
    fn path(self) -> &'static str {
        match self {
            Self::Wiki => "wikis",
            Self::Document => "documents",
        }
    }

    /// Whether `document_id` is a page of this kind in the project `key`.
    pub fn holds(self, key: &str, document_id: &str) -> bool {
        id_of(key, self.path(), document_id).is_some()
    }
}

/// A page of either kind as listed: its id, title and `updated` time.
struct Listed {
    id: String,
    updated: chrono::DateTime<chrono::Utc>,
}

/// Reads the project's pages of `kind`: sends the new and edited ones, returns those gone
/// (`deleted`: page ids the feed says were deleted).
pub(super) async fn refresh(
    read: &ProjectRead<'_>,
    kind: PageKind,
    deleted: &BTreeSet<u64>,
    state: &mut ProjectState,
) -> Result<Part, Stop> {
    let listing: Vec<Listed> = match kind {
        PageKind::Wiki => read
            .web
            .wikis(read.key)
            .await?
            .into_iter()
            .map(|p| Listed {
                id: p.id.to_string(),
                updated: p.updated,
            })
            .collect(),
        PageKind::Document => read
            .web
            .documents(read.project.id)
            .await?
            .into_iter()
            .map(|p| Listed {
                id: p.id,
                updated: p.updated,
            })
            .collect(),
    };
    let mut part = Part::default();
    let mut listed = BTreeSet::new();
    for page in &listing {
        read.go_on()?;
        if page.id.parse().is_ok_and(|n: u64| deleted.contains(&n)) && kind == PageKind::Wiki {
            continue;
        }
        let id = format!("{}/{}/{}", read.key, kind.path(), page.id);
        listed.insert(id.clone());
        if read.since.is_some_and(|s| page.updated < s) {
            listed.remove(&id);
            continue;
        }
        let updated = page.updated.to_rfc3339();
        if read.previous.seen.get(&id) == Some(&updated) && read.previous.documents.contains(&id) {
            continue;
        }
        let record = match kind {
            PageKind::Wiki => {
                let page = read.web.wiki(page.id.parse().unwrap_or_default()).await?;
                let text = page.content.unwrap_or_default();
                record(
                    read,
                    &id,
                    &page.name,
                    &text,
                    page.updated,
                    &format!("alias/wiki/{}", page.id),
                )
            }
            PageKind::Document => {
                let page = read.web.document(&page.id).await?;
                let text = page.plain.unwrap_or_default();
                let link = format!("document/{}/{}", read.key, page.id);
                record(read, &id, &page.title, &text, page.updated, &link)
            }
        };
        read.send.send(record).await?;
        part.emitted += 1;
        state.documents.insert(id.clone());
        state.seen.insert(id, updated);
    }
    part.gone = read
        .previous
        .documents
        .iter()
        .filter(|d| kind.holds(read.key, d) && !listed.contains(*d))
        .map(|d| tombstone(d, "deleted"))
        .collect();
    Ok(part)
}

fn record(
    read: &ProjectRead<'_>,
    id: &str,
    title: &str,
    text: &str,
    updated: chrono::DateTime<chrono::Utc>,
    link: &str,
) -> RawRecord {
    let mut document = Document::text(read.source, id, DocumentKind::Wiki, read.readable(text));
    document.title = Some(title.to_string());
    document.url = Some(read.link(link));
    document.updated_at = Some(updated);
    let metadata = &mut document.metadata;
    metadata.insert("project".into(), read.key.into());
    metadata.insert("title".into(), title.into());
    metadata.insert("updated".into(), updated.to_rfc3339().into());
    metadata.insert("updated_ts".into(), MetaValue::Int(updated.timestamp()));
    RawRecord::Document(document)
}

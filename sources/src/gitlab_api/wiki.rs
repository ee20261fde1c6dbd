//! A project's wiki (`include` has `wiki`): one document per page, kind `wiki`, chunked by the
//! prose strategy (title in every chunk, cuts at headings).
//!
//! One request (`GET /projects/:id/wikis?with_content=1`) lists every page with its content;
//! GitLab gives no change marker per page, so the source compares what it would send with what
//! it last sent ([`crate::kept_versions`]) and sends only new or edited pages. The listing is
//! complete, so a page it no longer holds is deleted.

use std::collections::BTreeSet;

use kass_pipeline::{Document, DocumentKind, RawRecord};

use super::project_read::{Part, ProjectRead};
use super::state::ProjectState;
use super::web::WikiPage;
use crate::api::scope_driver::Stop;

/// The document id of a wiki page: `{project path}/wikis/{slug}`.
fn document_id(project: &str, slug: &str) -> String {
    format!("{project}/wikis/{slug}")
}

/// Whether `document_id` is a wiki page of `project`.
pub(super) fn is_page(project: &str, document_id: &str) -> bool {
    document_id
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix("/wikis/"))
        .is_some()
}

/// Reads the wiki: sends its new and edited pages, returns the pages gone.
pub(super) async fn refresh(
    read: &ProjectRead<'_>,
    state: &mut ProjectState,
) -> Result<Part, Stop> {
    let pages = read.web.wiki(read.project.id).await?;
    let mut part = Part::default();
    let mut listed = BTreeSet::new();
    for page in &pages {
        read.go_on()?;
        let record = page_record(read, page);
        let id = record.document_id().to_string();
        if read.send.send_changed(record).await? {
            part.emitted += 1;
        }
        state.documents.insert(id.clone());
        listed.insert(id);
    }
    part.gone = read.held_except(|d| is_page(read.path, d), |d| listed.contains(d), "deleted");
    Ok(part)
}

fn page_record(read: &ProjectRead<'_>, page: &WikiPage) -> RawRecord {
    let mut document = Document::text(
        read.source,
        document_id(read.path, &page.slug),
        DocumentKind::Wiki,
        page.content.clone(),
    );
    let title = if page.title.is_empty() {
        &page.slug
    } else {
        &page.title
    };
    document.title = Some(title.clone());
    if !read.project.web_url.is_empty() {
        document.url = Some(format!("{}/-/wikis/{}", read.project.web_url, page.slug));
    }
    let metadata = &mut document.metadata;
    metadata.insert("project".into(), read.path.into());
    metadata.insert("slug".into(), page.slug.as_str().into());
    metadata.insert("title".into(), title.as_str().into());
    metadata.insert("format".into(), page.format.as_str().into());
    RawRecord::Document(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ids_belong_to_their_project_only() {
        let id = document_id("group/app", "dir/setup");
        assert_eq!(id, "group/app/wikis/dir/setup");
        assert!(is_page("group/app", &id));
        assert!(!is_page("group/ap", &id));
        assert!(!is_page("group/app", "group/app/issues/1"));
    }
}

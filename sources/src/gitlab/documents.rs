//! An issue or merge request with its notes as one document (kind `issue` / `merge_request`):
//! its description as the text, every human note a message, so the chunker's issue strategy
//! puts the title in every chunk and cuts at comments.

use kass_pipeline::{Document, DocumentKind, Message, MetaValue, Metadata, RawRecord};

use super::model::{Issue, Kind, Note};

/// The document id of an issue or merge request: `{project path}/{issues|merge_requests}/{iid}`.
pub(crate) fn document_id(project: &str, kind: Kind, iid: u64) -> String {
    format!("{project}/{}/{iid}", kind.path())
}

/// The `iid` of a document of `kind` in `project`, if the id is one.
pub(crate) fn iid_of(project: &str, kind: Kind, document_id: &str) -> Option<u64> {
    document_id
        .strip_prefix(project)?
        .strip_prefix('/')?
        .strip_prefix(kind.path())?
        .strip_prefix('/')?
        .parse()
        .ok()
}

/// The document of `issue` and its `notes` (system notes only with `system_notes`).
pub(crate) fn issue_record(
    source: &str,
    project: &str,
    kind: Kind,
    issue: &Issue,
    notes: &[Note],
    system_notes: bool,
) -> RawRecord {
    let messages = notes
        .iter()
        .filter(|n| system_notes || !n.system)
        .filter(|n| !n.body.trim().is_empty())
        .map(|n| Message {
            id: n.id.to_string(),
            author: n
                .author
                .as_ref()
                .map_or_else(|| "unknown".to_string(), |a| a.shown().to_string()),
            ts: n.created_at,
            text: match n.position.as_ref().and_then(|p| p.new_path.as_ref()) {
                Some(path) => match n.position.as_ref().and_then(|p| p.new_line) {
                    Some(line) => format!("(on {path} line {line}) {}", n.body),
                    None => format!("(on {path}) {}", n.body),
                },
                None => n.body.clone(),
            },
            thread_id: None,
            edited: false,
        })
        .collect();
    let mut metadata = Metadata::new();
    metadata.insert("project".into(), project.into());
    metadata.insert("iid".into(), MetaValue::Int(issue.iid as i64));
    metadata.insert("state".into(), issue.state.as_str().into());
    metadata.insert("labels".into(), MetaValue::List(issue.labels.clone()));
    if let Some(author) = &issue.author {
        metadata.insert("author".into(), author.shown().into());
    }
    metadata.insert(
        "assignees".into(),
        MetaValue::List(
            issue
                .assignees
                .iter()
                .map(|a| a.shown().to_string())
                .collect(),
        ),
    );
    if let Some(milestone) = &issue.milestone {
        metadata.insert("milestone".into(), milestone.title.as_str().into());
    }
    metadata.insert(
        "created_ts".into(),
        MetaValue::Int(issue.created_at.timestamp()),
    );
    metadata.insert(
        "updated_ts".into(),
        MetaValue::Int(issue.updated_at.timestamp()),
    );
    let sigil = match kind {
        Kind::Issues => '#',
        Kind::MergeRequests => '!',
    };
    RawRecord::Document(Document {
        id: document_id(project, kind, issue.iid),
        source: source.to_string(),
        kind: match kind {
            Kind::Issues => DocumentKind::Issue,
            Kind::MergeRequests => DocumentKind::MergeRequest,
        },
        title: Some(format!("{project}{sigil}{} {}", issue.iid, issue.title)),
        text: issue.description.clone().filter(|d| !d.trim().is_empty()),
        messages,
        url: Some(issue.web_url.clone()).filter(|u| !u.is_empty()),
        created_at: Some(issue.created_at),
        updated_at: Some(issue.updated_at),
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back() {
        let id = document_id("group/app", Kind::Issues, 45);
        assert_eq!(id, "group/app/issues/45");
        assert_eq!(iid_of("group/app", Kind::Issues, &id), Some(45));
        assert_eq!(iid_of("group/app", Kind::MergeRequests, &id), None);
        assert_eq!(iid_of("group", Kind::Issues, &id), None);
    }
}

//! A project's repository (`include` has `code`): one document per text file at `code_ref`
//! (default: the project's default branch), its kind from its extension (Markdown to the
//! prose strategy, code to the code strategy with line numbers, the rest as text).
//!
//! Each run asks which commit the ref names (one request); the same commit as last run reads
//! nothing more. Otherwise the whole tree at that commit is listed (keyset pages of 100) and
//! only the files whose blob id changed are downloaded: a blob id changes exactly when the
//! content does. Binary files (a NUL byte, invalid UTF-8), files over `max_code_file_bytes`
//! and symbolic links are skipped, counted under `kass_records_dropped_total{reason}` and
//! remembered, so they are not downloaded again until they change. A file gone from the
//! tree, or now skipped, is deleted.

use kass_pipeline::{telemetry, Document, MetaValue, RawRecord};

use super::project_read::{Part, ProjectRead};
use super::state::{CodeState, ProjectState};
use super::web::TreeEntry;
use crate::api::scope_driver::Stop;
use crate::text_file;

/// Git's mode of a symbolic link: its blob is the target's path, not content.
const SYMLINK: &str = "120000";

/// What the source's config says about code.
pub(super) struct CodeSettings<'a> {
    pub git_ref: Option<&'a str>,
    pub max_bytes: u64,
}

/// The document id of a repository file: `{project path}/repository/{file path}`.
fn document_id(project: &str, file: &str) -> String {
    format!("{project}/repository/{file}")
}

/// The file path of `document_id` if it is a repository file of `project`.
pub(super) fn file_of<'d>(project: &str, document_id: &'d str) -> Option<&'d str> {
    document_id
        .strip_prefix(project)?
        .strip_prefix("/repository/")
}

/// Reads the repository's changes since the last run: sends new and changed files, returns the
/// files gone.
pub(super) async fn refresh(
    read: &ProjectRead<'_>,
    settings: &CodeSettings<'_>,
    state: &mut ProjectState,
) -> Result<Part, Stop> {
    let path = read.path;
    let held = |d: &str| file_of(path, d).is_some();
    // Files read under another size cap are read again.
    let before = read
        .previous
        .code
        .clone()
        .filter(|c| c.max_bytes == settings.max_bytes)
        .unwrap_or_default();
    let git_ref = settings
        .git_ref
        .map(str::to_string)
        .or_else(|| read.project.default_branch.clone());
    let Some(git_ref) = git_ref else {
        // An empty repository (no default branch): no files.
        state.code = None;
        return Ok(Part {
            emitted: 0,
            gone: read.held_except(held, |_| false, "deleted"),
        });
    };
    let Some(commit) = read.web.commit(read.project.id, &git_ref).await? else {
        // No such ref in this project: nothing read, nothing deleted.
        tracing::warn!(source = %read.source, project = %path, git_ref = %git_ref, "code_ref names nothing in this project; its files are not read");
        telemetry::source_warnings(read.source, "ref_not_found", 1);
        return Ok(Part::default());
    };
    if before.commit == commit && before.git_ref == git_ref {
        // Nothing committed since: only files found gone earlier and withheld by the deletion
        // guard are looked at again.
        return Ok(Part {
            emitted: 0,
            gone: read.held_except(
                held,
                |d| file_of(path, d).is_some_and(|f| before.blobs.contains_key(f)),
                "deleted",
            ),
        });
    }
    let tree = read.web.tree(read.project.id, &commit).await?;
    let mut code = CodeState {
        git_ref,
        commit,
        max_bytes: settings.max_bytes,
        ..CodeState::default()
    };
    let mut part = Part::default();
    for entry in tree.iter().filter(|e| e.kind == "blob") {
        read.go_on()?;
        let file = entry.path.as_str();
        let id = document_id(path, file);
        if before.blobs.get(file) == Some(&entry.id) && read.previous.documents.contains(&id) {
            code.blobs.insert(file.to_string(), entry.id.clone());
            continue;
        }
        if before.skipped.get(file) == Some(&entry.id) {
            code.skipped.insert(file.to_string(), entry.id.clone());
            continue;
        }
        let text = if entry.mode == SYMLINK {
            Err("symlink")
        } else {
            let bytes = read.web.blob(read.project.id, &entry.id).await?;
            telemetry::source_bytes(read.source, bytes.len());
            if bytes.len() as u64 > settings.max_bytes {
                Err("too_large")
            } else {
                text_file::decode(bytes).ok_or("binary")
            }
        };
        match text {
            Ok(text) => {
                read.send
                    .send(file_record(read, &code, entry, text))
                    .await?;
                part.emitted += 1;
                state.documents.insert(id);
                code.blobs.insert(file.to_string(), entry.id.clone());
            }
            Err(reason) => {
                tracing::debug!(source = %read.source, project = %path, file, reason, "repository file skipped");
                telemetry::record_dropped(read.source, reason);
                code.skipped.insert(file.to_string(), entry.id.clone());
            }
        }
    }
    part.gone = read.held_except(
        held,
        |d| file_of(path, d).is_some_and(|f| code.blobs.contains_key(f)),
        "deleted",
    );
    state.code = Some(code);
    Ok(part)
}

fn file_record(
    read: &ProjectRead<'_>,
    code: &CodeState,
    entry: &TreeEntry,
    text: String,
) -> RawRecord {
    let file = entry.path.as_str();
    let (kind, language) = text_file::kind_of(&text_file::extension(file));
    let mut document = Document::text(read.source, document_id(read.path, file), kind, text);
    document.title = Some(file.to_string());
    if !read.project.web_url.is_empty() {
        document.url = Some(format!(
            "{}/-/blob/{}/{file}",
            read.project.web_url, code.git_ref
        ));
    }
    let metadata = &mut document.metadata;
    metadata.insert("project".into(), read.path.into());
    // `path` is what the code strategy reads the language from and puts in every chunk.
    metadata.insert("path".into(), file.into());
    metadata.insert("ref".into(), code.git_ref.as_str().into());
    // No commit: a later commit leaving the file as it is does not send it again, so the
    // commit it was read at would differ between an incremental and a fresh run. The blob id
    // names the content exactly.
    metadata.insert("blob".into(), entry.id.as_str().into());
    if let Some(language) = language {
        metadata.insert("language".into(), MetaValue::from(language));
    }
    RawRecord::Document(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_parse_back() {
        let id = document_id("group/app", "src/main.rs");
        assert_eq!(id, "group/app/repository/src/main.rs");
        assert_eq!(file_of("group/app", &id), Some("src/main.rs"));
        assert_eq!(file_of("group/ap", &id), None);
        assert_eq!(file_of("group/app", "group/app/wikis/home"), None);
    }
}

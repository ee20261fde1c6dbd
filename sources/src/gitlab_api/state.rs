//! What the source keeps per project between runs (a scope of the source's cursor).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kept_versions::KeptVersions;

/// One project's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectState {
    /// The project's path when last read, for people reading the state and the logs.
    #[serde(default)]
    pub name: String,
    /// Unix seconds: the last run that read the project completely.
    #[serde(default)]
    pub read_until: Option<i64>,
    /// Every document of the project the source sent and has not tombstoned since.
    #[serde(default)]
    pub documents: BTreeSet<String>,
    /// Deletions the guard held back: verified again by the next run.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "KeptVersions::is_empty")]
    pub kept: KeptVersions,
    /// Each issue and merge request as last read: `updated_at` and the human notes count, so
    /// an unchanged one costs no request and a deleted note (which does not touch
    /// `updated_at`) is still noticed.
    #[serde(default)]
    pub seen: BTreeMap<String, Seen>,
    /// The repository as last read (`include` has `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeState>,
}

/// The repository's files as last read: an unchanged commit reads nothing, an unchanged blob
/// is not downloaded again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeState {
    /// The ref read (`code_ref` or the default branch) and the commit it named.
    pub git_ref: String,
    pub commit: String,
    /// The size cap the files were read under: another one reads every file again.
    pub max_bytes: u64,
    /// File path -> blob id, for the files sent as documents.
    #[serde(default)]
    pub blobs: BTreeMap<String, String>,
    /// File path -> blob id, for the files skipped (binary, too large, a link): not
    /// downloaded again until they change.
    #[serde(default)]
    pub skipped: BTreeMap<String, String>,
}

/// An issue or merge request as last read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub updated_at: String,
    pub notes: u64,
}

crate::scope_state_by_fields!(ProjectState);

//! What the source keeps per project between runs (a scope of the source's cursor).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kept_versions::KeptVersions;

/// One project's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectState {
    /// The project's name when last read, for people reading the state and the logs.
    #[serde(default)]
    pub name: String,
    /// Unix seconds: the last run that read the project completely. The next run asks for
    /// issues updated since the day before it (`updatedSince` takes a date only).
    #[serde(default)]
    pub read_until: Option<i64>,
    /// Unix seconds: the last run that listed every issue (the reconciliation of ids).
    #[serde(default)]
    pub reconciled: Option<i64>,
    /// The id of the last activity of the project's feed read: the next run reads the feed
    /// after it.
    #[serde(default)]
    pub feed_after: Option<u64>,
    /// Every document of the project the source sent and has not tombstoned since.
    #[serde(default)]
    pub documents: BTreeSet<String>,
    /// Deletions the guard held back: verified again by the next run.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "KeptVersions::is_empty")]
    pub kept: KeptVersions,
    /// Each issue, page and document as last read: its `updated` time (RFC 3339), so an
    /// unchanged one costs no request.
    #[serde(default)]
    pub seen: BTreeMap<String, String>,
}

crate::scope_state_by_fields!(ProjectState);

//! Where a source left off, stored in the store at `_state/{source}.json`. A file-based source
//! records a fingerprint (size and modification time) of each input it read and skips inputs
//! whose fingerprint is unchanged. An API source records a typed state per scope (a Slack
//! channel: how far its history is complete, the threads it still watches, the documents it
//! holds), which it reads back with [`Cursor::scope`]. Either way a scheduled run fetches only
//! new or changed data.
//!
//! An input is recorded only once it was read completely (one that failed keeps its old
//! fingerprint and is read again), and the cursor is saved only after the pipeline drained,
//! i.e. every batch holding what was read is written. A crash before that re-reads those
//! inputs next time instead of skipping them; re-reading is harmless, as chunk ids are
//! deterministic and stored chunks are not embedded again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use kass_pipeline::model::document_version::{next_run_version, DocumentVersion};
use kass_pipeline::store::{ObjectStore, StoreError};

const VERSION: u32 = 1;

/// What identifies one version of an input: `size:modified-nanos`, or for a folder a digest of
/// its files' fingerprints.
pub type Fingerprint = String;

pub fn fingerprint(metadata: &std::fs::Metadata) -> Fingerprint {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}:{modified}", metadata.len())
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    /// The format of this file; a cursor of another version is ignored (everything is read).
    pub version: u32,
    /// Digest of the settings the inputs were read with (source, transform and chunking
    /// configuration): other settings make other chunks, so everything is read again.
    #[serde(default)]
    pub settings: String,
    /// Input (path relative to the source's root) -> fingerprint when last read.
    #[serde(default)]
    pub inputs: BTreeMap<String, Fingerprint>,
    /// Scope (a channel id) -> the state its source keeps for it, in the source's own format.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scopes: BTreeMap<String, Value>,
    /// When the fetch that saved it ended (every batch written): the source's last fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The document version of the run that saved it: the next run's is newer (see
    /// `kass_pipeline::model::document_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_version: Option<DocumentVersion>,
}

impl CursorState {
    /// The cursor saved for `source`, as stored; `None` when there is none or it cannot be
    /// read (for `kass status`, which reports rather than resumes).
    pub async fn read(store: &dyn ObjectStore, source: &str) -> Result<Option<Self>, StoreError> {
        match store.get(&Cursor::key(source)).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The cursor of one source during a run: what the last completed run saw, and what this
/// run has seen so far.
#[derive(Debug, Default)]
pub struct Cursor {
    previous: CursorState,
    seen: Mutex<BTreeMap<String, Fingerprint>>,
    scopes: Mutex<BTreeMap<String, Value>>,
    settings: String,
    run_version: DocumentVersion,
}

impl Cursor {
    pub fn key(source: &str) -> String {
        format!("_state/{source}.json")
    }

    /// The cursor saved for `source`, or an empty one (everything is new) when there is none
    /// or it was made with other `settings`.
    pub async fn load(
        store: &dyn ObjectStore,
        source: &str,
        settings: &str,
    ) -> Result<Self, StoreError> {
        let key = Self::key(source);
        let settings = settings_digest(settings);
        let saved = match store.get(&key).await {
            Ok(bytes) => Some(bytes),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let previous = match saved.as_deref().map(serde_json::from_slice::<CursorState>) {
            Some(Ok(state)) if state.version == VERSION && state.settings == settings => state,
            Some(Ok(_)) => {
                tracing::info!(
                    key,
                    "cursor of other settings or version; reading everything"
                );
                CursorState::default()
            }
            Some(Err(e)) => {
                tracing::warn!(key, error = %e, "unreadable cursor; reading everything");
                CursorState::default()
            }
            None => CursorState::default(),
        };
        // The version survives a change of settings: it orders runs, whatever they read.
        let last_version = saved
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|v| v.get("run_version").and_then(Value::as_u64));
        let run_version = next_run_version(last_version, chrono::Utc::now());
        // Inputs this run does not reach (stopped early, or failing) keep what the last run
        // knew of them.
        let seen = Mutex::new(previous.inputs.clone());
        let scopes = Mutex::new(previous.scopes.clone());
        Ok(Self {
            previous,
            seen,
            scopes,
            settings,
            run_version,
        })
    }

    /// The version of this run's documents and tombstones: newer than every earlier run's.
    pub fn run_version(&self) -> DocumentVersion {
        self.run_version
    }

    /// Whether `input` is as the last run read it (then it is skipped).
    pub fn unchanged(&self, input: &str, fingerprint: &Fingerprint) -> bool {
        self.previous.inputs.get(input) == Some(fingerprint)
    }

    /// Records that `input` was read completely with this fingerprint. Call it only after
    /// reading succeeded: an input that failed keeps its old fingerprint and is read again.
    pub fn read(&self, input: &str, fingerprint: Fingerprint) {
        self.seen
            .lock()
            .expect("cursor lock")
            .insert(input.to_string(), fingerprint);
    }

    /// The scopes the last completed run kept a state for.
    pub fn scope_names(&self) -> Vec<String> {
        self.previous.scopes.keys().cloned().collect()
    }

    /// The state the last completed run kept for `scope`; `None` when it kept none, or one this
    /// version cannot read (the scope is then read as new, and the reason logged).
    pub fn scope<T: DeserializeOwned>(&self, scope: &str) -> Option<T> {
        let value = self.previous.scopes.get(scope)?;
        match serde_json::from_value(value.clone()) {
            Ok(state) => Some(state),
            Err(e) => {
                tracing::warn!(scope, error = %e, "unreadable scope state; reading the scope as new");
                None
            }
        }
    }

    /// Records `scope`'s state as of what this run sent downstream; saved by [`Self::save`]
    /// once the batches holding it are written.
    pub fn record_scope<T: Serialize>(&self, scope: &str, state: &T) {
        let value = serde_json::to_value(state).expect("scope states are plain data");
        self.scopes
            .lock()
            .expect("cursor lock")
            .insert(scope.to_string(), value);
    }

    /// Drops `scope`'s state: the scope is gone and its documents were tombstoned.
    pub fn forget_scope(&self, scope: &str) {
        self.scopes.lock().expect("cursor lock").remove(scope);
    }

    /// Stores what this run read; call only once the batches holding it are written.
    pub async fn save(&self, store: &dyn ObjectStore, source: &str) -> Result<(), StoreError> {
        let state = CursorState {
            version: VERSION,
            settings: self.settings.clone(),
            inputs: self.seen.lock().expect("cursor lock").clone(),
            scopes: self.scopes.lock().expect("cursor lock").clone(),
            saved_at: Some(chrono::Utc::now()),
            run_version: Some(self.run_version),
        };
        let body = serde_json::to_vec_pretty(&state).expect("plain JSON");
        store.put(&Self::key(source), body).await
    }
}

/// How a running source uses the cursor it was built with (see
/// [`SourceDeps`](crate::SourceDeps)), the same whether it has one or not: without a cursor no
/// input counts as unchanged and nothing is recorded, so every source reads its inputs with one
/// loop: skip what is [`unchanged`](Self::unchanged), [`read`](Self::read) what was read
/// completely.
#[derive(Debug, Clone, Default)]
pub struct Resume(Option<Arc<Cursor>>);

impl From<Option<Arc<Cursor>>> for Resume {
    fn from(cursor: Option<Arc<Cursor>>) -> Self {
        Self(cursor)
    }
}

impl Resume {
    /// Whether there is a cursor to compare with; a source whose fingerprints cost a read
    /// computes them only then.
    pub fn is_resuming(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `input` is as the last run read it, so it is skipped; never without a cursor.
    pub fn unchanged(&self, input: &str, fingerprint: &Fingerprint) -> bool {
        self.0
            .as_ref()
            .is_some_and(|cursor| cursor.unchanged(input, fingerprint))
    }

    /// Records that `input` was read completely (see [`Cursor::read`]); nothing without a
    /// cursor.
    pub fn read(&self, input: &str, fingerprint: Fingerprint) {
        if let Some(cursor) = &self.0 {
            cursor.read(input, fingerprint);
        }
    }
}

fn settings_digest(settings: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(settings.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::store::LocalStore;

    #[tokio::test]
    async fn only_inputs_read_completely_advance_and_other_settings_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let cursor = Cursor::load(&store, "s", "v1").await.unwrap();
        assert!(!cursor.unchanged("a", &"1:1".into()));
        cursor.read("a", "1:1".into());
        // `b` failed: not recorded.
        cursor.save(&store, "s").await.unwrap();

        let next = Cursor::load(&store, "s", "v1").await.unwrap();
        assert!(next.unchanged("a", &"1:1".into()));
        assert!(!next.unchanged("b", &"2:2".into()));
        assert!(!next.unchanged("a", &"1:2".into()), "modified");
        // Not reached this time: kept for the next run.
        next.save(&store, "s").await.unwrap();
        let again = Cursor::load(&store, "s", "v1").await.unwrap();
        assert!(again.unchanged("a", &"1:1".into()));

        let other = Cursor::load(&store, "s", "v2").await.unwrap();
        assert!(
            !other.unchanged("a", &"1:1".into()),
            "other settings read everything"
        );
    }
}

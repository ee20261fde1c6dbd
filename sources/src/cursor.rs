//! Where a file-based source left off: a fingerprint (size and modification time) of each
//! input it read, stored in the store at `_state/{source}.json`. A fetch skips inputs whose
//! fingerprint is unchanged, so a scheduled run fetches only new or changed data.
//!
//! An input is recorded only once it was read completely (one that failed keeps its old
//! fingerprint and is read again), and the cursor is saved only after the pipeline drained,
//! i.e. every batch holding what was read is written. A crash before that re-reads those
//! inputs next time instead of skipping them; re-reading is harmless, as chunk ids are
//! deterministic and stored chunks are not embedded again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

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
    pub inputs: BTreeMap<String, Fingerprint>,
}

/// The cursor of one source during a run: what the last completed run saw, and what this
/// run has seen so far.
#[derive(Debug, Default)]
pub struct Cursor {
    previous: CursorState,
    seen: Mutex<BTreeMap<String, Fingerprint>>,
    settings: String,
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
        let previous = match store.get(&key).await {
            Ok(bytes) => match serde_json::from_slice::<CursorState>(&bytes) {
                Ok(state) if state.version == VERSION && state.settings == settings => state,
                Ok(_) => {
                    tracing::info!(
                        key,
                        "cursor of other settings or version; reading everything"
                    );
                    CursorState::default()
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "unreadable cursor; reading everything");
                    CursorState::default()
                }
            },
            Err(StoreError::NotFound { .. }) => CursorState::default(),
            Err(e) => return Err(e),
        };
        // Inputs this run does not reach (stopped early, or failing) keep what the last run
        // knew of them.
        let seen = Mutex::new(previous.inputs.clone());
        Ok(Self {
            previous,
            seen,
            settings,
        })
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

    /// Stores what this run read; call only once the batches holding it are written.
    pub async fn save(&self, store: &dyn ObjectStore, source: &str) -> Result<(), StoreError> {
        let state = CursorState {
            version: VERSION,
            settings: self.settings.clone(),
            inputs: self.seen.lock().expect("cursor lock").clone(),
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

//! Where a file-based source left off: a fingerprint (size and modification time) of each
//! input it read, stored in the store at `_state/{source}.json`. A fetch skips inputs whose
//! fingerprint is unchanged, so a scheduled run fetches only new or changed data.
//!
//! The cursor is saved only after the run that read the inputs finished writing every batch
//! (the caller saves it once the fetch pipeline has drained), so a crash mid-run re-reads
//! those inputs next time instead of skipping them. Re-reading is harmless: chunk ids are
//! deterministic and stored chunks are not embedded again.

use std::collections::BTreeMap;
use std::sync::Mutex;
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
    pub version: u32,
    /// Input (path relative to the source's root) -> fingerprint when last read.
    pub inputs: BTreeMap<String, Fingerprint>,
}

/// The cursor of one source during a run: what the last completed run saw, and what this
/// run has seen so far.
#[derive(Debug, Default)]
pub struct Cursor {
    previous: CursorState,
    seen: Mutex<BTreeMap<String, Fingerprint>>,
}

impl Cursor {
    pub fn key(source: &str) -> String {
        format!("_state/{source}.json")
    }

    /// The cursor saved for `source`, or an empty one (everything is new).
    pub async fn load(store: &dyn ObjectStore, source: &str) -> Result<Self, StoreError> {
        let key = Self::key(source);
        let previous = match store.get(&key).await {
            Ok(bytes) => match serde_json::from_slice::<CursorState>(&bytes) {
                Ok(state) if state.version == VERSION => state,
                Ok(state) => {
                    tracing::warn!(
                        key,
                        version = state.version,
                        "cursor of another version; reading everything"
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
        Ok(Self {
            previous,
            seen: Mutex::default(),
        })
    }

    /// Records `input` as seen with `fingerprint`; `true` if it changed since the last run
    /// (or is new), i.e. it must be read.
    pub fn changed(&self, input: &str, fingerprint: Fingerprint) -> bool {
        let changed = self.previous.inputs.get(input) != Some(&fingerprint);
        self.seen
            .lock()
            .expect("cursor lock")
            .insert(input.to_string(), fingerprint);
        changed
    }

    /// Stores what this run saw; call only once its batches are written.
    pub async fn save(&self, store: &dyn ObjectStore, source: &str) -> Result<(), StoreError> {
        let state = CursorState {
            version: VERSION,
            inputs: self.seen.lock().expect("cursor lock").clone(),
        };
        let body = serde_json::to_vec_pretty(&state).expect("plain JSON");
        store.put(&Self::key(source), body).await
    }
}

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{validate_key, ObjectStore, StoreError};

/// Objects as files under a root directory. Writes go to a temporary file in the same
/// directory and are renamed into place, so a crash never leaves a half-written batch.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
}

/// Process-wide, so two stores on the same root never share a temporary file name.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

const TMP_MARKER: &str = ".kass-tmp-";

impl LocalStore {
    pub fn new(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::Io {
            op: "create",
            location: format!("file://{}", root.display()),
            reason: e.to_string(),
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write, fsync, move into place, fsync the directory: once this returns, the object
    /// survives a crash or power loss, which is what "durably written" promises the embed half.
    /// Moving into place is a rename (replaces) or a hard link (fails if the key exists, which
    /// is atomic, unlike checking first). Returns whether the object was written.
    async fn write_durably(
        &self,
        key: &str,
        body: Vec<u8>,
        replace: bool,
    ) -> Result<bool, StoreError> {
        validate_key(key)?;
        let path = self.root.join(key);
        let dir = path
            .parent()
            .expect("validated keys have a parent")
            .to_path_buf();
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TMP_MARKER}{}-{n}", std::process::id()));
        let tmp_path = tmp.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            std::fs::create_dir_all(&dir)?;
            let mut file = std::fs::File::create(&tmp_path)?;
            file.write_all(&body)?;
            file.sync_all()?;
            let written = if replace {
                std::fs::rename(&tmp_path, &path)?;
                true
            } else {
                let linked = match std::fs::hard_link(&tmp_path, &path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e),
                };
                std::fs::remove_file(&tmp_path)?;
                linked
            };
            std::fs::File::open(&dir)?.sync_all()?;
            Ok(written)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io("write", key, e)
        })
    }

    fn io(&self, op: &'static str, key: &str, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound {
                location: self.location(key),
            }
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            StoreError::Refused {
                op,
                location: self.location(key),
                reason: e.to_string(),
            }
        } else {
            StoreError::Io {
                op,
                location: self.location(key),
                reason: e.to_string(),
            }
        }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn location(&self, key: &str) -> String {
        format!("file://{}", self.root.join(key).display())
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        self.write_durably(key, body, true).await.map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        self.write_durably(key, body, false).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        validate_key(key)?;
        tokio::fs::read(self.root.join(key))
            .await
            .map_err(|e| self.io("read", key, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix_for_err = prefix.to_string();
        let prefix = prefix.to_string();
        let walk = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            // Only descend into the directory the prefix names, not the whole store.
            let start_rel = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            let mut keys = Vec::new();
            let mut stack = vec![root.join(start_rel)];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(&prefix)
                        && !entry.file_name().to_string_lossy().starts_with(TMP_MARKER)
                    {
                        keys.push(key);
                    }
                }
            }
            keys.sort();
            Ok(keys)
        });
        walk.await
            .map_err(|e| StoreError::Io {
                op: "list",
                location: self.location(&prefix_for_err),
                reason: e.to_string(),
            })?
            .map_err(|e| StoreError::Io {
                op: "list",
                location: self.location(&prefix_for_err),
                reason: e.to_string(),
            })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        match tokio::fs::remove_file(self.root.join(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io("delete", key, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        store
            .put("slack/chunked/a.json", b"1".to_vec())
            .await
            .unwrap();
        store
            .put("slack/chunked/b.json", b"2".to_vec())
            .await
            .unwrap();
        store
            .put("gitlab/chunked/c.json", b"3".to_vec())
            .await
            .unwrap();
        assert_eq!(store.get("slack/chunked/b.json").await.unwrap(), b"2");
        assert_eq!(
            store.list("slack/").await.unwrap(),
            vec!["slack/chunked/a.json", "slack/chunked/b.json"]
        );
        assert_eq!(
            store.list("slack/chunked/b").await.unwrap(),
            vec!["slack/chunked/b.json"]
        );
        assert_eq!(store.list("").await.unwrap().len(), 3);
        store.delete("slack/chunked/a.json").await.unwrap();
        assert!(matches!(
            store.get("slack/chunked/a.json").await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn put_if_absent_never_replaces_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        assert!(store
            .put_if_absent("a/b.json", b"first".to_vec())
            .await
            .unwrap());
        assert!(!store
            .put_if_absent("a/b.json", b"second".to_vec())
            .await
            .unwrap());
        assert_eq!(store.get("a/b.json").await.unwrap(), b"first");
        assert_eq!(
            store.list("a/").await.unwrap(),
            vec!["a/b.json"],
            "no temporary file left"
        );
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        for key in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(
                matches!(
                    store.put(key, vec![]).await,
                    Err(StoreError::InvalidKey { .. })
                ),
                "{key}"
            );
        }
    }
}

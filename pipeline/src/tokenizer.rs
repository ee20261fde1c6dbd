//! Token counting with the embedding model's own tokenizer, so a chunk's token bound is the
//! model's, not a guess.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::wordpiece_count::WordPieceCount;

#[derive(Debug, thiserror::Error)]
#[error("cannot load tokenizer {path}: {reason} (run scripts/fetch-model.sh, or set [tokenizer] path / KASS_TOKENIZER)")]
pub struct TokenizerError {
    pub path: PathBuf,
    pub reason: String,
}

/// A loaded `tokenizer.json`, with its built-in truncation and padding switched off (the
/// MiniLM file pads every input to 128, which would make every count 128).
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: Arc<Tokenizer>,
    /// The exact shortcut for BERT WordPiece tokenizers; `None` for others.
    fast: Option<Arc<WordPieceCount>>,
    special_tokens: usize,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl TokenCounter {
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let err = |reason: String| TokenizerError {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut tokenizer: Tokenizer = text
            .parse()
            .map_err(|e: tokenizers::Error| err(e.to_string()))?;
        let fast = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|json| WordPieceCount::from_tokenizer_json(&json))
            .map(Arc::new);
        tokenizer
            .with_truncation(None)
            .map_err(|e| err(e.to_string()))?;
        tokenizer.with_padding(None);
        let special_tokens = tokenizer
            .encode("", true)
            .map(|e| e.len())
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            tokenizer: Arc::new(tokenizer),
            fast,
            special_tokens,
        })
    }

    /// Tokens of `text` without the model's special tokens.
    pub fn count(&self, text: &str) -> usize {
        match &self.fast {
            Some(fast) => fast.count(text, |word| self.count_with_tokenizer(word)),
            None => self.count_with_tokenizer(text),
        }
    }

    /// The same count by the tokenizer alone (what [`Self::count`] must always equal).
    pub fn count_with_tokenizer(&self, text: &str) -> usize {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or(usize::MAX)
    }

    /// Tokens the model adds around every input ([CLS] and [SEP] for BERT): a chunk of
    /// `max_tokens` must leave room for them.
    pub fn special_tokens(&self) -> usize {
        self.special_tokens
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

/// Where `scripts/fetch-model.sh` puts the local model: `$KASS_MODEL_DIR`, else
/// `$KASS_CACHE/models/all-MiniLM-L6-v2`, else `~/.cache/kass/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KASS_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("KASS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".cache").join("kass")
        });
    cache.join("models").join("all-MiniLM-L6-v2")
}

/// `$KASS_TOKENIZER`, else `tokenizer.json` in [`default_model_dir`].
pub fn default_tokenizer_path() -> PathBuf {
    std::env::var_os("KASS_TOKENIZER")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_model_dir().join("tokenizer.json"))
}

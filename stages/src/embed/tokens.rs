//! Counting tokens before a request is sent, so that the tokens-per-minute limiter and the
//! per-request token limit hold before the provider has to say so.

use std::path::Path;

use kass_pipeline::tokenizer::{TokenCounter, TokenizerError};

/// How an endpoint counts tokens.
#[derive(Clone)]
pub enum TokenCount {
    /// The provider's own tokenizer (a `tokenizer.json`, e.g. Voyage publishes theirs on
    /// Hugging Face): exact.
    Tokenizer(TokenCounter),
    /// No tokenizer at hand: [`estimate`].
    Estimate,
}

impl TokenCount {
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        Ok(Self::Tokenizer(TokenCounter::from_file(path)?))
    }

    pub fn count(&self, text: &str) -> usize {
        match self {
            Self::Tokenizer(counter) => {
                counter.count(text).saturating_add(counter.special_tokens())
            }
            Self::Estimate => estimate(text),
        }
    }
}

/// A conservative token estimate for BPE and WordPiece tokenizers: one token per 3 bytes of
/// ASCII (English prose runs at about 4 to 4.5 bytes per token, code at about 3 to 3.5), plus
/// one per non-ASCII character (CJK ideographs and accented letters cost about one each), plus
/// one for the sequence. It overestimates ordinary text by 20 to 50 %, which costs some of the
/// tokens-per-minute budget but keeps requests under the provider's limits.
pub fn estimate(text: &str) -> usize {
    let mut ascii = 0usize;
    let mut other = 0usize;
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(3) + other + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_at_least_a_word_per_token() {
        let text = "The quick brown fox jumps over the lazy dog near the riverbank.";
        let words = text.split_whitespace().count();
        assert!(estimate(text) >= words);
        assert_eq!(estimate(""), 1);
        assert_eq!(estimate("日本語"), 4);
    }
}

use serde::Deserialize;

/// `[chunking]` in kass.toml: how documents are cut into chunks for embedding.
///
/// Every chunk stays within `max_tokens` of the embedding model's tokenizer, special tokens
/// included, so the model never silently truncates a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Most tokens in one chunk, counted with the embedding model's tokenizer and including the
    /// special tokens it adds ([CLS] and [SEP] for MiniLM). Use the model's maximum sequence
    /// length (256 for all-MiniLM-L6-v2) or less.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// A silence longer than this many minutes between two chat messages starts a new chunk.
    /// The default, a day, never splits a channel-day: its windows fill to the token budget.
    /// Measured on the real Slack export (`scripts/chat-window-study.sh`: thread openers as
    /// queries, their replies as answers), that retrieves better than conversation windows
    /// closed at a 30-minute silence, within the same number of context tokens: a quiet
    /// channel's lone messages, one chunk each, carried too little to be found.
    #[serde(default = "default_chat_gap_minutes")]
    pub chat_gap_minutes: i64,
    /// Most chat messages in one chunk, even if they would fit the token budget.
    #[serde(default = "default_chat_max_messages")]
    pub chat_max_messages: usize,
    /// Chat messages repeated from the end of one chunk at the start of the next, so a reply
    /// keeps the message it answers. Not applied across a `chat_gap_minutes` silence. Must be
    /// less than `chat_max_messages`.
    #[serde(default = "default_chat_overlap_messages")]
    pub chat_overlap_messages: usize,
    /// Joins isolated chat messages (a silence longer than `chat_gap_minutes` on both sides) that
    /// follow one another into one window, up to the token budget and `chat_max_messages`. In a
    /// quiet channel most messages are isolated, and alone each makes a chunk of a line or two
    /// with no context around it. Conversations (messages closer than the gap) keep their own
    /// windows either way.
    #[serde(default)]
    pub chat_join_sparse: bool,
    /// Documents chunked at the same time. Chunking is CPU-bound; unset means one per core.
    #[serde(default)]
    pub concurrency: Option<usize>,
}

fn default_max_tokens() -> usize {
    256
}
fn default_chat_gap_minutes() -> i64 {
    24 * 60
}
fn default_chat_max_messages() -> usize {
    40
}
fn default_chat_overlap_messages() -> usize {
    0
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self {
            max_tokens: default_max_tokens(),
            chat_gap_minutes: default_chat_gap_minutes(),
            chat_max_messages: default_chat_max_messages(),
            chat_overlap_messages: default_chat_overlap_messages(),
            chat_join_sparse: false,
            concurrency: None,
        }
    }
}

/// Fewest tokens a chunk may hold besides the special tokens; below this, titles and author
/// prefixes leave no room for content.
pub(crate) const MIN_BUDGET: usize = 16;

impl ChunkingConfig {
    /// Checks the settings against each other and against the tokenizer's special tokens, so a
    /// bad value fails at startup rather than dead-lettering every document.
    pub fn validate(&self, special_tokens: usize) -> Result<(), String> {
        if self.max_tokens < special_tokens + MIN_BUDGET {
            return Err(format!(
                "chunking.max_tokens = {} leaves no room for text: it must be at least {}",
                self.max_tokens,
                special_tokens + MIN_BUDGET
            ));
        }
        if self.chat_max_messages == 0 {
            return Err("chunking.chat_max_messages must be at least 1".into());
        }
        if self.chat_overlap_messages >= self.chat_max_messages {
            return Err(format!(
                "chunking.chat_overlap_messages = {} must be less than chat_max_messages = {}",
                self.chat_overlap_messages, self.chat_max_messages
            ));
        }
        if self.chat_gap_minutes < 0 {
            return Err("chunking.chat_gap_minutes must not be negative".into());
        }
        if self.concurrency == Some(0) {
            return Err("chunking.concurrency must be at least 1".into());
        }
        Ok(())
    }
}

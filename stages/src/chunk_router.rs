//! The chunk router: cuts each document into chunks the embedding model takes whole, with the
//! strategy its kind calls for (see [`crate::chunking`]).
//!
//! ```ignore
//! let counter = TokenCounter::from_file(&default_tokenizer_path())?;
//! let router = ChunkRouter::new(ChunkingConfig::default(), counter);
//! let chunks = router.chunk(&document)?;
//! ```

use async_trait::async_trait;
use kass_pipeline::tokenizer::TokenCounter;
use kass_pipeline::{
    telemetry, Chunk, Document, DocumentKind, FailureKind, FatalError, ItemError, ItemStage,
    StageContext, StageError,
};

use crate::chunking::{self, ChunkingConfig, Sizer, MIN_BUDGET};

/// The `chunk_router` stage: documents in, chunks out.
///
/// Every chunk's text, counted with the model's tokenizer plus its special tokens, is at most
/// `max_tokens`, is trimmed and never empty; chunk ordinals run 0..n per document and ids are
/// deterministic, so re-chunking an unchanged document reproduces the same chunks.
#[derive(Debug, Clone)]
pub struct ChunkRouter {
    config: ChunkingConfig,
    counter: TokenCounter,
}

/// How a document is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Chat,
    Code,
    Prose,
}

impl ChunkingConfig {
    /// The chunk router for these settings, checked against the tokenizer first, so that a bad
    /// value fails at startup rather than dead-lettering every document.
    pub fn build(self, counter: TokenCounter) -> Result<ChunkRouter, FatalError> {
        self.validate(counter.special_tokens())
            .map_err(|e| FatalError::Config(format!("[chunking] {e}")))?;
        Ok(ChunkRouter::new(self, counter))
    }
}

impl ChunkRouter {
    pub fn new(config: ChunkingConfig, counter: TokenCounter) -> Self {
        Self { config, counter }
    }

    /// Cuts one document into chunks. A document with no text and no messages gives none (and
    /// is counted as dropped); a configuration leaving no room for text is an error.
    pub fn chunk(&self, doc: &Document) -> Result<Vec<Chunk>, ItemError> {
        let sizer = Sizer::new(&self.counter, self.config.max_tokens);
        if sizer.budget() < MIN_BUDGET {
            return Err(ItemError::new(
                FailureKind::ChunkBudget,
                format!(
                    "cannot chunk document {}: max_tokens = {} leaves {} tokens for text, fewer than {MIN_BUDGET}",
                    doc.id,
                    self.config.max_tokens,
                    sizer.budget()
                ),
            ));
        }
        let has_text = doc.text.as_deref().is_some_and(|t| !t.trim().is_empty());
        let has_messages = doc.messages.iter().any(|m| !m.text.trim().is_empty());
        if !has_text && !has_messages {
            telemetry::record_dropped(&doc.source, "empty_document");
            return Ok(Vec::new());
        }
        let drafts = match strategy(doc.kind, has_text, has_messages) {
            Strategy::Chat => chunking::chat::chunk(doc, &self.config, &sizer),
            Strategy::Code => chunking::code::chunk(doc, &sizer),
            Strategy::Prose => chunking::prose::chunk(doc, &sizer),
        };
        Ok(chunking::finish(doc, drafts, &sizer))
    }
}

fn strategy(kind: DocumentKind, has_text: bool, has_messages: bool) -> Strategy {
    match kind {
        DocumentKind::ChatConversation | DocumentKind::Thread => Strategy::Chat,
        // Files that arrive as messages only are conversations, whatever their kind says.
        DocumentKind::CodeFile | DocumentKind::Markdown | DocumentKind::Text
            if has_messages && !has_text =>
        {
            Strategy::Chat
        }
        DocumentKind::CodeFile => Strategy::Code,
        DocumentKind::Issue
        | DocumentKind::MergeRequest
        | DocumentKind::Comment
        | DocumentKind::Wiki
        | DocumentKind::Markdown
        | DocumentKind::Text => Strategy::Prose,
    }
}

#[async_trait]
impl ItemStage for ChunkRouter {
    type Input = Document;
    type Output = Chunk;

    fn name(&self) -> &'static str {
        "chunk_router"
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Tokenizing is CPU-bound: it runs on the blocking pool so that it never stalls the
    /// runtime threads driving timers, store I/O and the other stages.
    async fn process(
        &self,
        item: &Document,
        _ctx: &StageContext,
    ) -> Result<Vec<Chunk>, StageError> {
        let (router, doc) = (self.clone(), item.clone());
        let chunks = tokio::task::spawn_blocking(move || router.chunk(&doc))
            .await
            .map_err(|e| FatalError::Panicked(format!("chunk_router: {e}")))??;
        Ok(chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_route_to_their_strategy() {
        assert_eq!(strategy(DocumentKind::Thread, false, true), Strategy::Chat);
        assert_eq!(
            strategy(DocumentKind::CodeFile, true, false),
            Strategy::Code
        );
        assert_eq!(strategy(DocumentKind::Issue, false, true), Strategy::Prose);
        assert_eq!(
            strategy(DocumentKind::Markdown, false, true),
            Strategy::Chat
        );
        assert_eq!(strategy(DocumentKind::Text, true, true), Strategy::Prose);
    }
}

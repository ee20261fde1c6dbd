//! The chunking strategies the [chunk router](crate::chunk_router) dispatches to, one per shape
//! of document:
//!
//! - [`chat`]: conversation windows of consecutive messages (chat days, threads).
//! - [`code`]: top-level definitions and blank-line separated blocks of a source file.
//! - [`prose`]: markdown, wiki pages, issues, merge requests, comments and plain text, split by
//!   headings and paragraphs, never cutting a fenced code block open.
//!
//! Every strategy produces [`Draft`]s within one token budget; [`finish`] turns them into
//! [`Chunk`]s. Tokens are counted once, per unit (message line, paragraph, source line): with
//! the BERT WordPiece tokenizer the tokens of units joined by whitespace are the sum of each
//! unit's, so a strategy that knows its draft's sum says so and the draft is not counted again
//! (the property tests in `stages/tests/chunking_properties.rs` count every chunk in full and
//! hold the bound). A draft without a known sum gets one full count.

pub(crate) mod chat;
pub(crate) mod code;
mod config;
pub(crate) mod prose;
mod sizer;

use std::ops::Range;

use kass_pipeline::model::chunk_keys;
use kass_pipeline::{Chunk, Document, MetaValue, Metadata};

pub use config::ChunkingConfig;
pub(crate) use config::MIN_BUDGET;
pub(crate) use sizer::Sizer;

/// A chunk's text and its strategy's metadata, before it gets an ordinal and an id.
#[derive(Debug)]
pub(crate) struct Draft {
    pub text: String,
    pub metadata: Metadata,
    /// The text's tokens, when the strategy summed them from its units; `None`: count it.
    pub tokens: Option<usize>,
}

/// The metadata every chunk of `doc` starts from: the document's own (flat, scalar) metadata,
/// then its kind, title and url.
pub(crate) fn base_metadata(doc: &Document) -> Metadata {
    let mut metadata = doc.metadata.clone();
    metadata.insert("kind".into(), doc.kind.as_str().into());
    if let Some(title) = &doc.title {
        metadata.insert("title".into(), title.as_str().into());
    }
    if let Some(url) = &doc.url {
        metadata.insert("url".into(), url.as_str().into());
    }
    metadata
}

/// The document's `path` metadata, if it has one.
pub(crate) fn metadata_path(doc: &Document) -> Option<&str> {
    doc.metadata.get("path").and_then(MetaValue::as_str)
}

/// Greedy packing: consecutive items go into one range while their sizes sum to at most
/// `budget`. An item larger than the budget gets a range of its own; the caller splits it.
pub(crate) fn pack(sizes: &[usize], budget: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut sum = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && sum + size > budget {
            ranges.push(start..i);
            start = i;
            sum = 0;
        }
        sum += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

/// Trims the drafts, drops empty ones, makes sure each fits the budget (from its summed tokens,
/// else one full count; re-splitting the rare one that does not) and numbers them into chunks.
pub(crate) fn finish(doc: &Document, drafts: Vec<Draft>, sizer: &Sizer) -> Vec<Chunk> {
    let mut chunks = Vec::with_capacity(drafts.len());
    let mut push = |text: &str, metadata: Metadata| {
        let text = text.trim();
        if !text.is_empty() {
            let ordinal = chunks.len();
            chunks.push(Chunk::new(
                &doc.source,
                &doc.id,
                ordinal,
                text.to_string(),
                metadata,
            ));
        }
    };
    for draft in drafts {
        let tokens = draft
            .tokens
            .unwrap_or_else(|| sizer.count(draft.text.trim()));
        if tokens <= sizer.budget() {
            push(&draft.text, draft.metadata);
        } else {
            tracing::debug!(
                document_id = %doc.id,
                "chunk over the token budget after packing; re-splitting it"
            );
            for piece in prose::resplit(draft.text.trim(), sizer) {
                push(&piece, draft.metadata.clone());
            }
        }
    }
    // Lets the embed half delete positions past the end when a document shrinks. Not part of
    // the id, so a document that only grows keeps its earlier chunks' ids.
    let total = chunks.len();
    for chunk in &mut chunks {
        chunk
            .metadata
            .insert(chunk_keys::DOCUMENT_CHUNKS.into(), MetaValue::from(total));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_fills_greedily_and_isolates_oversized_items() {
        assert_eq!(
            pack(&[3, 3, 3, 20, 1, 9, 1], 10),
            vec![0..3, 3..4, 4..6, 6..7]
        );
        assert_eq!(pack(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(pack(&[11], 10), vec![0..1]);
    }
}

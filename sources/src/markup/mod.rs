//! Document markup -> readable text, once for every source whose documents are written in a
//! wiki notation of their own (chat markup is [`kass_stages::markup`]'s, rendered per message).
//!
//! - [`backlog`]: Backlog notation (headings `*`, `{code}`, `[[links]]`, `''bold''`), for the
//!   projects whose text formatting rule is `backlog`; Markdown projects' text is already
//!   what the chunker's Markdown-aware splitting reads.

pub mod backlog;
pub mod discord;

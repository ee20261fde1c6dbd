//! Sources: where documents come from.

pub mod files;
pub mod jsonl;
pub mod slack_export;

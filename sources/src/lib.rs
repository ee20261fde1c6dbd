//! Sources: where documents come from.

pub mod cursor;
pub mod files;
pub mod jsonl;
pub mod s3_events;
pub mod slack_export;

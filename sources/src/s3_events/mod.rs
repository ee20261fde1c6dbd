//! S3 event notifications: the embed half's source of batch keys when the halves are split.
//!
//! - [`announcement`]: which records of a notification name batch files, decoded, and why the
//!   others are skipped.
//! - [`sqs`]: a queue receiving the bucket's notifications, long-polled; a message is deleted
//!   only once every batch it names is done (at-least-once), its visibility extended meanwhile.

pub mod announcement;
pub mod sqs;

pub use announcement::{parse_notification, Announcement, Parsed, Skip, UnknownEvent};

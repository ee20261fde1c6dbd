//! S3 event notifications: the embed half's source of batch keys when the halves are split.
//!
//! - [`announcement`]: which records of a notification name batch files, decoded, and why the
//!   others are skipped.
//! - [`announced`]: the batches a set of notifications names, each once, and the skips.
//! - [`listener`]: the SQS consume-and-acknowledge loop, handing each poll's batches to the
//!   embed half (a callback) and deleting a message only once its batches are done.
//! - [`sqs_event`]: a delivery of queue messages (a listener's poll, a Lambda's SQS event)
//!   and which of its messages are done; the Lambda's `batchItemFailures` answer.
//! - [`unreadable_event`]: a notification nobody can read, dead-lettered once.
//! - [`triggers`]: the bucket's notification rules for the batch prefixes, set up and checked.
//! - [`sqs`]: a queue receiving the bucket's notifications, long-polled; a message is deleted
//!   only once every batch it names is done (at-least-once), its visibility extended meanwhile.

pub mod announced;
pub mod announcement;
pub mod listener;
pub mod sqs;
pub mod sqs_event;
pub mod triggers;
pub mod unreadable_event;

pub use announced::Announced;
pub use announcement::{parse_notification, Announcement, Parsed, Skip, UnknownEvent};

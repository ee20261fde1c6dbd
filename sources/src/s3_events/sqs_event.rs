//! Queue messages read as one delivery, and which of them are done once the embed half ran:
//! shared by the listener (`kass embed --listen`, which deletes the done messages itself) and
//! the embedder Lambda fed by an SQS event source mapping (which answers the others as
//! `batchItemFailures`, so SQS delivers only those again).
//!
//! An SQS event as Lambda delivers it: `{"Records": [{"messageId", "receiptHandle", "body",
//! "eventSource": "aws:sqs", ...}]}`, each body a notification (S3, SNS or EventBridge, see
//! [`super::announcement`]). With `FunctionResponseTypes: [ReportBatchItemFailures]` the
//! function answers `{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}` for the
//! messages to deliver again; a thrown error would deliver the whole batch again.

use aws_lambda_events::sqs::SqsEvent;
pub use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use serde_json::Value;

use kass_pipeline::store::ObjectStore;
use kass_pipeline::topology::RunReport;

use super::announced::Announced;
use super::unreadable_event::dead_letter_event;

/// One queue message: its id and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// The messages of an SQS event, or `None` when `event` is not one (every record must come
/// from `aws:sqs`: an S3 event's records say `aws:s3`).
pub fn sqs_messages(event: &Value) -> Option<Vec<Message>> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    if records.is_empty() || !records.iter().all(from_sqs) {
        return None;
    }
    let event: SqsEvent = serde_json::from_value(event.clone()).ok()?;
    Some(
        event
            .records
            .into_iter()
            .map(|m| Message {
                id: m.message_id.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect(),
    )
}

/// What one delivery of messages names, message by message.
#[derive(Debug, Default)]
pub struct Delivery {
    pub announced: Announced,
    /// Per message, in order: its id and the batch keys it named, or `None` when it could not
    /// be recorded (an unreadable event whose dead letter could not be written): left for
    /// redelivery.
    pub named: Vec<(String, Option<Vec<String>>)>,
    /// Unreadable events dead-lettered.
    pub dead_letters: u64,
}

impl Delivery {
    /// Records every message; an unreadable event is dead-lettered (origin: the queue) and
    /// counts as done, since delivering it again cannot help.
    pub async fn read(
        store: &dyn ObjectStore,
        origin: &str,
        bucket: Option<String>,
        messages: &[Message],
    ) -> Self {
        let mut delivery = Delivery {
            announced: Announced::for_bucket(bucket),
            ..Self::default()
        };
        for Message { id, body } in messages {
            let named = match delivery.announced.add_body(body) {
                Ok(keys) => Some(keys),
                Err(error) => match dead_letter_event(store, origin, id, body, &error).await {
                    Ok(()) => {
                        delivery.dead_letters += 1;
                        Some(Vec::new())
                    }
                    Err(e) => {
                        // Not recorded anywhere: the message itself must stay.
                        tracing::error!(error = %e, id = %id, "cannot dead-letter an unreadable event; leaving it in the queue");
                        None
                    }
                },
            };
            delivery.named.push((id.clone(), named));
        }
        delivery
    }

    /// Whether message `i` is done after `run` (`None`: the run failed as a whole). Under
    /// `failed_batches` a message is left when one of its batch files could not be read at
    /// all (kept for the queue's redrive, which ends in its dead-letter queue); otherwise only
    /// when the store was unavailable. A service outage (provider or Chroma down for some
    /// chunks) leaves every message that named batches: which batch the chunks came from is
    /// not tracked, and stored chunks are skipped on the next delivery.
    pub fn is_done(&self, i: usize, run: Option<&RunReport>, failed_batches: Redeliver) -> bool {
        let Some(keys) = &self.named[i].1 else {
            return false;
        };
        if keys.is_empty() {
            return true;
        }
        let Some(run) = run else {
            return false;
        };
        if run.service_outages() > 0 {
            return false;
        }
        let failed = match failed_batches {
            Redeliver::Unreadable => &run.failed_batch_keys,
            Redeliver::StoreUnavailable => &run.retryable_batch_keys,
        };
        keys.iter().all(|k| !failed.contains(k))
    }

    /// The Lambda answer: every message not done, by id.
    pub fn batch_item_failures(&self, run: Option<&RunReport>) -> SqsBatchResponse {
        SqsBatchResponse {
            batch_item_failures: (0..self.named.len())
                .filter(|&i| !self.is_done(i, run, Redeliver::Unreadable))
                .map(|i| BatchItemFailure {
                    item_identifier: self.named[i].0.clone(),
                })
                .collect(),
        }
    }
}

/// Which failed batch files leave their message for redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeliver {
    /// Every batch file that could not be read (the Lambda: the queue's redrive then parks
    /// a batch that keeps failing in the dead-letter queue, where an alarm watches).
    Unreadable,
    /// Only those the store could not give (the listener: a malformed batch is in the dead
    /// letters already, and delivering it again cannot help).
    StoreUnavailable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, body: &str) -> Value {
        json!({"messageId": id, "receiptHandle": "rh", "body": body,
               "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
               "md5OfBody": "x", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kass-events",
               "awsRegion": "us-east-1"})
    }

    #[test]
    fn an_sqs_event_is_told_from_an_s3_event() {
        let event = json!({"Records": [record("m1", "{}"), record("m2", "b")]});
        let messages = sqs_messages(&event).unwrap();
        assert_eq!(messages[1].id, "m2");
        assert_eq!(messages[1].body, "b");
        let s3: Value = serde_json::from_str(include_str!(
            "../../../examples/events/s3-object-created.json"
        ))
        .unwrap();
        assert!(sqs_messages(&s3).is_none());
        assert!(sqs_messages(&json!({"Records": []})).is_none());
    }

    #[test]
    fn only_messages_of_failed_batches_are_answered() {
        let mut delivery = Delivery::default();
        for (id, keys) in [
            ("good", Some(vec!["a.json".to_string()])),
            ("poison", Some(vec!["b.json".to_string()])),
            ("test-event", Some(vec![])),
            ("unrecorded", None),
        ] {
            delivery.named.push((id.to_string(), keys));
        }
        let mut run = RunReport::default();
        run.failed_batch_keys.insert("b.json".into());
        let ids = |r: SqsBatchResponse| {
            r.batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(delivery.batch_item_failures(Some(&run))),
            ["poison", "unrecorded"]
        );
        assert_eq!(
            ids(delivery.batch_item_failures(None)),
            ["good", "poison", "unrecorded"]
        );
        assert!(delivery.is_done(1, Some(&run), Redeliver::StoreUnavailable));
        run.retryable_dead_letters = 3;
        assert_eq!(
            ids(delivery.batch_item_failures(Some(&run))),
            ["good", "poison", "unrecorded"],
            "an outage leaves every message that named batches"
        );
    }
}

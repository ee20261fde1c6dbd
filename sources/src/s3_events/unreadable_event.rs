//! A notification nobody can read (not S3's, SNS's or EventBridge's shape): recorded as a dead
//! letter, so that it is seen and not retried forever. Shared by the listener and the Lambda's
//! SQS delivery.

use serde_json::Value;

use kass_pipeline::dead_letter::{self, DeadLetter};
use kass_pipeline::store::{ObjectStore, StoreError};
use kass_pipeline::{FailureKind, ItemError, ItemKind};

use super::announcement::UnknownEvent;

/// Records a notification nobody can read, so that it is seen and not retried forever;
/// through the one letter writer, so it is counted with the others.
pub async fn dead_letter_event(
    store: &dyn ObjectStore,
    origin: &str,
    id: &str,
    body: &str,
    error: &UnknownEvent,
) -> Result<(), StoreError> {
    let letter = DeadLetter::new(
        "s3_events",
        origin,
        id,
        ItemKind::Event,
        &Value::String(body.to_string()),
        &ItemError::new(FailureKind::UnknownEvent, error.to_string()),
    );
    dead_letter::write(store, &letter).await?;
    tracing::warn!(origin, id, error = %error, "unreadable event dead-lettered");
    Ok(())
}

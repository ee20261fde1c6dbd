//! An SQS queue that receives a bucket's ObjectCreated notifications.
//!
//! Delivery is at-least-once: a received message stays in the queue, invisible for the
//! visibility timeout, and is deleted only when the caller says every batch it names is done.
//! While work goes on, a [`KeepInvisible`] guard extends the timeout at half its period, so a
//! slow embedding does not hand the message to a second consumer; if this process dies, the
//! extensions stop and the message reappears for another.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::Client;

use kass_pipeline::store::AwsEndpoint;
use kass_pipeline::telemetry::{self, SqsMessageDeleted};

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS queue `{queue}`: {operation} failed: {message}")]
    Call {
        queue: String,
        operation: &'static str,
        message: String,
    },
}

/// One received message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has handed this message out, this time included.
    pub receive_count: u32,
}

/// How the queue is polled.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Long-poll wait per receive (SQS caps it at 20 s).
    pub wait: Duration,
    /// Invisibility asked for on receive and renewed while working.
    pub visibility_timeout: Duration,
    /// Messages per receive (1-10).
    pub max_messages: i32,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(120),
            max_messages: 10,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    settings: PollSettings,
}

impl SqsQueue {
    /// `queue` is a queue URL, or a name (optionally `sqs://name`) resolved with GetQueueUrl.
    pub async fn connect(
        endpoint: &AwsEndpoint,
        queue: &str,
        settings: PollSettings,
    ) -> Result<Self, SqsError> {
        let shared = endpoint.sdk_config().await;
        let client = Client::new(&shared);
        let name = queue.strip_prefix("sqs://").unwrap_or(queue);
        let url = if name.starts_with("http://") || name.starts_with("https://") {
            name.to_string()
        } else {
            client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| call_error(name, "GetQueueUrl", e))?
                .queue_url
                .unwrap_or_default()
        };
        Ok(Self {
            client,
            url,
            settings,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to the long-poll time for messages; an empty list when none came.
    pub async fn receive(&self) -> Result<Vec<QueueMessage>, SqsError> {
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.settings.max_messages.clamp(1, 10))
            .wait_time_seconds(self.settings.wait.as_secs().min(20) as i32)
            .visibility_timeout(self.settings.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .map_err(|e| call_error(&self.url, "ReceiveMessage", e))?;
        let messages: Vec<QueueMessage> = answer
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(QueueMessage {
                    id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect();
        telemetry::sqs_received(messages.len());
        Ok(messages)
    }

    /// Done with a message: it will not be delivered again.
    pub async fn delete(&self, message: &QueueMessage) -> Result<(), SqsError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| call_error(&self.url, "DeleteMessage", e))?;
        SqsMessageDeleted {
            message_id: &message.id,
        }
        .emit();
        Ok(())
    }

    /// The queue's depth, sampled into `kass_sqs_queue_messages{queue, state}`: messages
    /// waiting (`ApproximateNumberOfMessages`) and being worked on
    /// (`ApproximateNumberOfMessagesNotVisible`). Both are approximate, as SQS says.
    pub async fn sample_depth(&self) -> Result<(u64, u64), SqsError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| call_error(&self.url, "GetQueueAttributes", e))?;
        let attributes = answer.attributes.unwrap_or_default();
        let count = |name: &A| {
            attributes
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (visible, in_flight) = (
            count(&A::ApproximateNumberOfMessages),
            count(&A::ApproximateNumberOfMessagesNotVisible),
        );
        let queue = self.url.rsplit('/').next().unwrap_or(&self.url);
        telemetry::sqs_queue_messages(queue, visible, in_flight);
        Ok((visible, in_flight))
    }

    /// Makes a message visible again now (work on it failed; let it be retried soon).
    pub async fn release(&self, message: &QueueMessage) -> Result<(), SqsError> {
        self.set_visibility(&message.receipt_handle, Duration::ZERO)
            .await
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), SqsError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(timeout.as_secs() as i32)
            .send()
            .await
            .map_err(|e| call_error(&self.url, "ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// Keeps `message` invisible until the guard is dropped.
    pub fn keep_invisible(&self, message: &QueueMessage) -> KeepInvisible {
        let queue = self.clone();
        let receipt = message.receipt_handle.clone();
        let timeout = self.settings.visibility_timeout;
        // Extended four times a timeout: a late extension (a loaded machine, a slow queue)
        // still lands before the message shows again to another worker.
        let period = (timeout / 4).max(Duration::from_millis(250));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match queue.set_visibility(&receipt, timeout).await {
                    Ok(()) => telemetry::sqs_visibility_extended(),
                    Err(e) => tracing::warn!(error = %e, "cannot extend a message's visibility"),
                }
            }
        });
        KeepInvisible { task }
    }
}

/// Extends a message's visibility timeout until dropped.
pub struct KeepInvisible {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeepInvisible {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn call_error<E, R>(
    queue: &str,
    operation: &'static str,
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> SqsError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SqsError::Call {
        queue: queue.to_string(),
        operation,
        message: DisplayErrorContext(&e).to_string(),
    }
}

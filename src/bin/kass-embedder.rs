#![recursion_limit = "256"]
//! The embedder Lambda: invoked with SQS events of S3 ObjectCreated notifications for batch
//! files (the event source mapping of `deploy/template.yaml`; the messages whose batches failed
//! are answered as `batchItemFailures`), or with S3 events directly; embeds the chunks and
//! upserts them into Chroma. See `deploy/` and the README's "Running split".

fn main() -> Result<(), lambda_runtime::Error> {
    kass::lambda::main_for::<kass::lambda::EmbedderFunction>()
}

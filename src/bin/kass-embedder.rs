#![recursion_limit = "256"]
//! The embedder Lambda: invoked with S3 ObjectCreated events for batch files; embeds their
//! chunks and upserts them into Chroma. See `deploy/` and the README's "Running split".

use std::sync::Arc;

use kass::lambda::{load_secrets_at_start, serve, EmbedderFunction};

fn main() -> Result<(), lambda_runtime::Error> {
    kass_stages::embed::providers::local::one_thread_per_forward_pass();
    load_secrets_at_start().map_err(|e| kass::logging::error_text(&e))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let function = Arc::new(EmbedderFunction::default());
            serve(move |event, deadline| {
                let function = function.clone();
                async move { function.handle(event, deadline).await }
            })
            .await
        })
}

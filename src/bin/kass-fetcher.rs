#![recursion_limit = "256"]
//! The fetcher Lambda: invoked by its schedule (every 6 hours); runs the sources into batch
//! files in `S3_BUCKET_NAME`, whose ObjectCreated events start the embedder.

use std::sync::Arc;

use kass::lambda::{load_secrets_at_start, serve, FetcherFunction};

fn main() -> Result<(), lambda_runtime::Error> {
    load_secrets_at_start().map_err(|e| kass::logging::error_text(&e))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let function = Arc::new(FetcherFunction::default());
            serve(move |event, deadline| {
                let function = function.clone();
                async move { function.handle(event, deadline).await }
            })
            .await
        })
}

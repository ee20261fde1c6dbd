#![recursion_limit = "256"]
//! The fetcher Lambda: invoked by its schedule (every 6 hours); runs the sources into batch
//! files in `S3_BUCKET_NAME`, whose ObjectCreated events start the embedder.

use std::sync::Arc;

use kass::lambda::{serve, FetcherFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let function = Arc::new(FetcherFunction::default());
    serve(move |event| {
        let function = function.clone();
        async move { function.handle(event).await }
    })
    .await
}

#![recursion_limit = "256"]
//! The fetcher Lambda: invoked by its schedule (every 6 hours); runs the sources into batch
//! files in `S3_BUCKET_NAME`, whose ObjectCreated events start the embedder.

fn main() -> Result<(), lambda_runtime::Error> {
    kass::lambda::main_for::<kass::lambda::FetcherFunction>()
}

#![recursion_limit = "256"]
//! The embedder Lambda: invoked with S3 ObjectCreated events for batch files; embeds their
//! chunks and upserts them into Chroma. See `deploy/` and the README's "Running split".

fn main() -> Result<(), lambda_runtime::Error> {
    kass::lambda::main_for::<kass::lambda::EmbedderFunction>()
}

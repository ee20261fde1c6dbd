//! Runs a source the way the topology does, collecting what it sends and what it dead-letters.

#![allow(dead_code)]

pub mod export;
#[path = "../../../tests/support/test_data.rs"]
pub mod test_data;

use std::sync::Arc;

use kass_pipeline::dead_letter::{self, DeadLetter};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{channel, RawRecord, Source, StageContext};

pub struct Run {
    pub records: Vec<RawRecord>,
    pub dead_letters: Vec<(String, DeadLetter)>,
}

pub async fn run_source(source: impl Source<Output = RawRecord>, stage: &str) -> Run {
    run_source_until(source, stage, None).await
}

/// [`run_source`], shutdown requested (as Ctrl-C does) once `stop_after` records came out.
pub async fn run_source_until(
    source: impl Source<Output = RawRecord>,
    stage: &str,
    stop_after: Option<usize>,
) -> Run {
    try_run_source(source, stage, stop_after)
        .await
        .expect("source failed")
}

/// [`run_source_until`], the source's error returned.
pub async fn try_run_source(
    source: impl Source<Output = RawRecord>,
    stage: &str,
    stop_after: Option<usize>,
) -> Result<Run, kass_pipeline::FatalError> {
    let store_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(store_dir.path()).unwrap());
    let (queue, writer) = dead_letter::spawn_writer(store.clone());
    let shutdown = Shutdown::default();
    let ctx = StageContext::new(stage, shutdown.clone(), queue);
    let (outlet, inlet) = channel::bounded(stage, "test", 16);
    let task = tokio::spawn(Box::new(source).run(outlet, ctx));
    let mut records = Vec::new();
    while let Some(record) = inlet.recv().await {
        records.push(record);
        if stop_after.is_some_and(|n| records.len() >= n) {
            shutdown.trigger();
        }
    }
    task.await.expect("source task panicked")?;
    let written = writer.await.unwrap().unwrap();
    let dead_letters = dead_letter::list(store.as_ref()).await.unwrap();
    assert_eq!(written.written as usize, dead_letters.len());
    Ok(Run {
        records,
        dead_letters,
    })
}

pub fn documents(records: &[RawRecord]) -> Vec<&kass_pipeline::Document> {
    records
        .iter()
        .map(|r| match r {
            RawRecord::Document(d) => d,
            RawRecord::Chat(c) => panic!("expected documents, got chat {}", c.document_id),
        })
        .collect()
}

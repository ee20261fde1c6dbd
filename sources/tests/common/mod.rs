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
    let store_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(store_dir.path()).unwrap());
    let (queue, writer) = dead_letter::spawn_writer(store.clone());
    let ctx = StageContext::new(stage, Shutdown::default(), queue);
    let (outlet, inlet) = channel::bounded(stage, "test", 16);
    let task = tokio::spawn(Box::new(source).run(outlet, ctx));
    let mut records = Vec::new();
    while let Some(record) = inlet.recv().await {
        records.push(record);
    }
    task.await
        .expect("source task panicked")
        .expect("source failed");
    let written = writer.await.unwrap().unwrap();
    let dead_letters = dead_letter::list(store.as_ref()).await.unwrap();
    assert_eq!(written.written as usize, dead_letters.len());
    Run {
        records,
        dead_letters,
    }
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

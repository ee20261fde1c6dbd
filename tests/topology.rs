//! The stage model's promises: bounded memory under a slow stage, per-item failures routed to the
//! dead letters without stopping the run, fatal errors stopping it cleanly, Ctrl-C draining.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use kass_pipeline::batch::{Batch, BatchRef, Compression};
use kass_pipeline::dead_letter;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::{
    Chunk, FailureKind, FatalError, Inlet, ItemError, ItemStage, Metadata, Outlet, PipelineItem,
    Source, StageContext, StageError, StreamStage, Topology, TopologyConfig,
};
use kass_stages::batch_loader::BatchLoader;

#[derive(Debug, Clone, Serialize)]
struct Item {
    n: usize,
}

impl PipelineItem for Item {
    fn source(&self) -> &str {
        "test"
    }
    fn item_id(&self) -> String {
        format!("item-{}", self.n)
    }
}

/// Emits `count` items (or forever), tracking how many the pipeline has accepted.
struct Counting {
    count: Option<usize>,
    produced: Arc<AtomicUsize>,
    consumed: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

#[async_trait]
impl Source for Counting {
    type Output = Item;
    fn name(&self) -> &str {
        "counting"
    }
    async fn run(self: Box<Self>, out: Outlet<Item>, ctx: StageContext) -> Result<(), FatalError> {
        let mut n = 0;
        while self.count.is_none_or(|c| n < c) && !ctx.shutdown.is_triggered() {
            if out.send(Item { n }).await.is_err() {
                return Ok(());
            }
            n += 1;
            let produced = self.produced.fetch_add(1, Ordering::SeqCst) + 1;
            let in_flight = produced - self.consumed.load(Ordering::SeqCst);
            self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        }
        Ok(())
    }
}

struct Passthrough;

#[async_trait]
impl ItemStage for Passthrough {
    type Input = Item;
    type Output = Item;
    fn name(&self) -> &'static str {
        "passthrough"
    }
    async fn process(&self, item: &Item, _ctx: &StageContext) -> Result<Vec<Item>, StageError> {
        Ok(vec![item.clone()])
    }
}

/// A sink that takes 1 ms per item.
struct SlowSink {
    consumed: Arc<AtomicUsize>,
}

#[async_trait]
impl StreamStage for SlowSink {
    type Input = Item;
    type Output = Item;
    fn name(&self) -> &'static str {
        "slow_sink"
    }
    async fn run(
        self: Box<Self>,
        input: Inlet<Item>,
        out: Outlet<Item>,
        _ctx: StageContext,
    ) -> Result<(), FatalError> {
        while let Some(item) = input.recv().await {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.consumed.fetch_add(1, Ordering::SeqCst);
            if out.send(item).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    (dir, store)
}

fn counting(
    count: Option<usize>,
) -> (
    Counting,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    let produced = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let source = Counting {
        count,
        produced: produced.clone(),
        consumed: consumed.clone(),
        max_in_flight: max.clone(),
    };
    (source, produced, consumed, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_bounds_in_flight_items_to_the_channel_capacities() {
    let capacity = 8;
    let total = 600;
    let (_dir, store) = store();
    let (source, produced, consumed, max_in_flight) = counting(Some(total));
    let report = Topology::new(
        TopologyConfig {
            channel_capacity: capacity,
        },
        store,
        Shutdown::default(),
    )
    .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
    .then(Passthrough)
    .then_stream(SlowSink {
        consumed: consumed.clone(),
    })
    .run(|_| {})
    .await
    .unwrap();
    assert_eq!(report.outputs, total as u64);
    assert_eq!(produced.load(Ordering::SeqCst), total);
    let max = max_in_flight.load(Ordering::SeqCst);
    // Two channels before the slow sink, plus one item held by each of the two stages' workers.
    let bound = 2 * capacity + 2;
    eprintln!(
        "max in flight: {max} (capacity {capacity} per channel, bound {bound}, total {total})"
    );
    assert!(
        max <= bound,
        "{max} items in flight exceeds the bound {bound}: backpressure is broken"
    );
    assert!(
        max >= capacity,
        "{max} in flight: the channels never filled, so this test measured nothing"
    );
}

struct FailsEveryTenth;

#[async_trait]
impl ItemStage for FailsEveryTenth {
    type Input = Item;
    type Output = Item;
    fn name(&self) -> &'static str {
        "fails_every_tenth"
    }
    fn concurrency(&self) -> usize {
        3
    }
    async fn process(&self, item: &Item, _ctx: &StageContext) -> Result<Vec<Item>, StageError> {
        if item.n % 10 == 3 {
            return Err(ItemError::new(
                FailureKind::Other("test_failure"),
                format!("item {} is cursed", item.n),
            )
            .into());
        }
        Ok(vec![item.clone()])
    }
}

#[tokio::test]
async fn failing_items_go_to_dead_letters_and_the_rest_completes() {
    let (_dir, store) = store();
    let (source, ..) = counting(Some(100));
    let report = Topology::new(
        TopologyConfig::default(),
        store.clone(),
        Shutdown::default(),
    )
    .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
    .then(FailsEveryTenth)
    .run(|_| {})
    .await
    .unwrap();
    assert_eq!(report.outputs, 90);
    assert_eq!(report.dead_letters, 10);
    let letters = dead_letter::list(store.as_ref()).await.unwrap();
    assert_eq!(letters.len(), 10);
    let mut failed: Vec<usize> = letters
        .iter()
        .map(|(_, l)| l.item["n"].as_u64().unwrap() as usize)
        .collect();
    failed.sort();
    assert_eq!(failed, (0..10).map(|i| i * 10 + 3).collect::<Vec<_>>());
    for (key, letter) in &letters {
        assert!(key.starts_with("_dead_letter/fails_every_tenth/"), "{key}");
        assert_eq!(letter.stage, "fails_every_tenth");
        assert_eq!(letter.error_type, "test_failure");
        assert!(letter.reason.contains("is cursed"));
    }
}

struct BreaksAfterFive;

#[async_trait]
impl StreamStage for BreaksAfterFive {
    type Input = Item;
    type Output = Item;
    fn name(&self) -> &'static str {
        "breaks_after_five"
    }
    async fn run(
        self: Box<Self>,
        input: Inlet<Item>,
        out: Outlet<Item>,
        _ctx: StageContext,
    ) -> Result<(), FatalError> {
        let mut seen = 0;
        while let Some(item) = input.recv().await {
            seen += 1;
            if seen > 5 {
                return Err(FatalError::Stage {
                    stage: "breaks_after_five".into(),
                    reason: "store unreachable".into(),
                });
            }
            let _ = out.send(item).await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn fatal_error_stops_an_endless_pipeline_with_the_cause() {
    let (_dir, store) = store();
    let (source, ..) = counting(None);
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        Topology::new(TopologyConfig::default(), store, Shutdown::default())
            .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
            .then(Passthrough)
            .then_stream(BreaksAfterFive)
            .run(|_| {}),
    )
    .await
    .expect("a fatal error must stop the pipeline, not hang it");
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("breaks_after_five") && err.contains("store unreachable"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_stops_sources_and_drains_everything_in_flight() {
    let (_dir, store) = store();
    let (source, produced, ..) = counting(None);
    let shutdown = Shutdown::default();
    let trigger = shutdown.clone();
    let mut seen = 0u64;
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        Topology::new(
            TopologyConfig {
                channel_capacity: 16,
            },
            store,
            shutdown,
        )
        .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
        .then(Passthrough)
        .run(|_| {
            seen += 1;
            if seen == 100 {
                trigger.trigger();
            }
        }),
    )
    .await
    .expect("shutdown must end the run")
    .unwrap();
    assert!(report.outputs >= 100);
    assert_eq!(
        report.outputs as usize,
        produced.load(Ordering::SeqCst),
        "items accepted before shutdown were lost"
    );
}

#[tokio::test]
async fn malformed_batch_is_dead_lettered_while_other_batches_load() {
    let (_dir, store) = store();
    let chunk = |i: usize| Chunk::new("slack", "doc", i, format!("text {i}"), Metadata::new());
    let good = Batch::new(
        "20250101_000000_0001".into(),
        chrono::Utc::now(),
        "slack",
        vec![chunk(0), chunk(1)],
    );
    let good_key = "slack/chunked/year=2025/month=01/day=01/batch_20250101_000000_0001.json";
    let bad_key = "slack/chunked/year=2025/month=01/day=01/batch_20250101_000000_0002.json";
    let missing_key = "slack/chunked/year=2025/month=01/day=01/batch_20250101_000000_0003.json";
    store
        .put(good_key, good.encode(Compression::None))
        .await
        .unwrap();
    let mut broken: serde_json::Value =
        serde_json::from_slice(&good.encode(Compression::None)).unwrap();
    broken["chunks"][1]["text"] = serde_json::Value::Null;
    store
        .put(bad_key, serde_json::to_vec(&broken).unwrap())
        .await
        .unwrap();

    let refs: Vec<BatchRef> = [bad_key, good_key, missing_key]
        .iter()
        .map(|k| BatchRef {
            key: k.to_string(),
            source: "slack".into(),
            chunk_count: 2,
            bytes: 0,
        })
        .collect();
    let mut loaded = Vec::new();
    let report = Topology::new(
        TopologyConfig::default(),
        store.clone(),
        Shutdown::default(),
    )
    .from_stream("batch_keys", futures::stream::iter(refs))
    .then(BatchLoader::new(store.clone()))
    .run(|c: Chunk| loaded.push(c.id))
    .await
    .unwrap();
    // The good batch whole, and the bad batch's usable chunk: only the chunk with no text is
    // dead-lettered, not its batch.
    assert_eq!(loaded.len(), 3, "the good batch's chunks must come through");
    assert_eq!(report.dead_letters, 2);
    let letters = dead_letter::list(store.as_ref()).await.unwrap();
    let reason_for = |key: &str| {
        letters
            .iter()
            .find(|(_, l)| l.item_id == key)
            .map(|(_, l)| l.reason.clone())
            .unwrap()
    };
    let bad = reason_for(&format!("{bad_key}#chunks[1]"));
    assert!(
        bad.contains(bad_key) && bad.contains("chunks[1].text"),
        "{bad}"
    );
    assert!(reason_for(missing_key).contains("not found"));
}

struct PanicsOnFive;

#[async_trait]
impl ItemStage for PanicsOnFive {
    type Input = Item;
    type Output = Item;
    fn name(&self) -> &'static str {
        "panics_on_five"
    }
    async fn process(&self, item: &Item, _ctx: &StageContext) -> Result<Vec<Item>, StageError> {
        assert!(item.n != 5, "boom");
        Ok(vec![item.clone()])
    }
}

#[tokio::test]
async fn a_panicking_stage_stops_the_run_and_is_named() {
    let (_dir, store) = store();
    let (source, ..) = counting(None);
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        Topology::new(TopologyConfig::default(), store, Shutdown::default())
            .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
            .then(PanicsOnFive)
            .run(|_| {}),
    )
    .await
    .expect("a panic must stop the pipeline")
    .unwrap_err()
    .to_string();
    assert!(err.contains("panics_on_five"), "{err}");
}

/// A store whose dead-letter writes fail, as an unreachable bucket's would.
#[derive(Debug)]
struct DeadLettersUnwritable(LocalStore);

#[async_trait]
impl ObjectStore for DeadLettersUnwritable {
    fn location(&self, key: &str) -> String {
        self.0.location(key)
    }
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), kass_pipeline::store::StoreError> {
        if key.starts_with("_dead_letter/") {
            return Err(kass_pipeline::store::StoreError::Io {
                op: "write",
                location: self.location(key),
                reason: "connection refused".into(),
            });
        }
        self.0.put(key, body).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> Result<bool, kass_pipeline::store::StoreError> {
        self.0.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, kass_pipeline::store::StoreError> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, kass_pipeline::store::StoreError> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), kass_pipeline::store::StoreError> {
        self.0.delete(key).await
    }
}

#[tokio::test]
async fn a_failing_dead_letter_writer_stops_an_endless_run_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(DeadLettersUnwritable(LocalStore::new(dir.path()).unwrap()));
    let (source, ..) = counting(None);
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        Topology::new(TopologyConfig::default(), store, Shutdown::default())
            .sources(vec![Box::new(source) as Box<dyn Source<Output = Item>>])
            .then(FailsEveryTenth)
            .run(|_| {}),
    )
    .await
    .expect("a dead-letter writer failure must stop the pipeline")
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("_dead_letter/") && err.contains("connection refused"),
        "{err}"
    );
}

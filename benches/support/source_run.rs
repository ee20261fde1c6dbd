//! What the sources' request benchmarks (`gitlab_incremental`, `backlog_incremental`) share:
//! one run of a source with its cursor kept in a local store, and a request log counted per
//! route. Included by `#[path]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{channel, Source, StageContext};
use kass_sources::cursor::Cursor;
use kass_sources::{BuildSource, SourceDeps};

/// One run of the source `config` builds, its cursor (named `name`) loaded from and saved to
/// `store`: the documents it sent and the seconds it took.
pub async fn run<C: BuildSource + Clone>(
    store: &LocalStore,
    name: &str,
    config: &C,
) -> (usize, f64) {
    let cursor = Arc::new(Cursor::load(store, name, "bench").await.unwrap());
    let source = config
        .clone()
        .build_with(SourceDeps {
            cursor: Some(cursor.clone()),
            tombstones: None,
            allow_deletions: false,
        })
        .unwrap();
    let (queue, _writer) = spawn_writer(Arc::new(LocalStore::new(store.root()).unwrap()));
    let ctx = StageContext::new(name, Shutdown::default(), queue);
    let (outlet, inlet) = channel::bounded(name, "bench", 64);
    let started = Instant::now();
    let task = tokio::spawn(Box::new(source).run(outlet, ctx));
    let mut documents = 0;
    while inlet.recv().await.is_some() {
        documents += 1;
    }
    task.await.unwrap().unwrap();
    cursor.save(store, name).await.unwrap();
    (documents, started.elapsed().as_secs_f64())
}

/// Requests per route in a local server's log of (route, path).
pub fn per_route(log: Vec<(String, String)>) -> BTreeMap<String, usize> {
    let mut routes = BTreeMap::new();
    for (route, _) in log {
        *routes.entry(route).or_default() += 1;
    }
    routes
}

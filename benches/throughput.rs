//! Throughput of the chunk router and the batch writer, in MB/s of input text.
//!
//! Inputs: the real Slack export in ../shared/data/slack-export-sample (read once through the
//! slack_export source and the transform), and a generated code corpus (deterministic Rust and
//! Python files). Run: `cargo bench --bench throughput`. Without ../shared/data only the code
//! corpus is measured, after a `SKIPPED` line (see tests/support/test_data.rs).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use kass::config::KassConfig;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::tokenizer::{default_tokenizer_path, TokenCounter};
use kass_pipeline::{
    Chunk, Document, DocumentKind, ItemStage, MetaValue, RawRecord, Source, StageContext, Topology,
    TopologyConfig,
};
use kass_sinks::batch_writer::{BatchWriter, BatchWriterConfig};
use kass_stages::chunk_router::ChunkRouter;
use kass_stages::chunking::ChunkingConfig;
use kass_stages::transform::TransformConfig;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[path = "../tests/support/test_data.rs"]
mod test_data;

fn slack_documents(rt: &tokio::runtime::Runtime) -> Option<Vec<Document>> {
    let export = test_data::shared_data("slack-export-sample")?;
    let config = KassConfig::parse(&format!(
        "[[sources]]\ntype = \"slack_export\"\nname = \"slack\"\npath = \"{}\"\n",
        export.display()
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let sources: Vec<Box<dyn Source<Output = RawRecord>>> = config
        .sources
        .iter()
        .cloned()
        .map(|s| s.build().unwrap())
        .collect();
    Some(rt.block_on(async {
        let mut docs = Vec::new();
        Topology::new(TopologyConfig::default(), store, Shutdown::default())
            .sources(sources)
            .then(TransformConfig::default().build().unwrap())
            .run(|d| docs.push(d))
            .await
            .unwrap();
        docs
    }))
}

/// Deterministic code files: functions of varied length in Rust and Python, ~`total` bytes.
fn code_documents(total: usize) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut bytes = 0;
    let mut i = 0usize;
    while bytes < total {
        let (ext, text) = if i.is_multiple_of(2) {
            let mut s = String::from("use std::collections::HashMap;\n\n");
            for f in 0..(5 + i % 7) {
                s.push_str(&format!("/// Computes value {f} of file {i}.\npub fn compute_{f}(input: &[u64]) -> u64 {{\n"));
                for l in 0..(3 + (i * 7 + f) % 25) {
                    s.push_str(&format!(
                        "    let v{l} = input.iter().map(|x| x.wrapping_mul({l})).sum::<u64>();\n"
                    ));
                }
                s.push_str("    input.len() as u64\n}\n\n");
            }
            ("rs", s)
        } else {
            let mut s = String::from("import math\n\n\n");
            for f in 0..(5 + i % 5) {
                s.push_str(&format!("def compute_{f}(values):\n    \"\"\"Value {f} of file {i}.\"\"\"\n    total = 0\n"));
                for l in 0..(3 + (i * 3 + f) % 30) {
                    s.push_str(&format!(
                        "    total += sum(math.sqrt(v) * {l} for v in values)\n"
                    ));
                }
                s.push_str("    return total\n\n\n");
            }
            ("py", s)
        };
        bytes += text.len();
        let mut doc = Document::text(
            "code",
            format!("src/file_{i}.{ext}"),
            DocumentKind::CodeFile,
            text,
        );
        doc.metadata
            .insert("path".into(), MetaValue::Str(format!("src/file_{i}.{ext}")));
        docs.push(doc);
        i += 1;
    }
    docs
}

fn text_bytes(docs: &[Document]) -> u64 {
    docs.iter()
        .map(|d| {
            d.text.as_ref().map_or(0, |t| t.len())
                + d.messages.iter().map(|m| m.text.len()).sum::<usize>()
        })
        .sum::<usize>() as u64
}

fn context(
    store: Arc<dyn ObjectStore>,
) -> (
    StageContext,
    tokio::task::JoinHandle<
        Result<kass_pipeline::dead_letter::LetterCounts, kass_pipeline::FatalError>,
    >,
) {
    let (queue, writer) = kass_pipeline::dead_letter::spawn_writer(store);
    (
        StageContext::new("bench", Shutdown::default(), queue),
        writer,
    )
}

fn chunk_all(
    rt: &tokio::runtime::Runtime,
    router: &ChunkRouter,
    docs: &[Document],
    ctx: &StageContext,
) -> Vec<Chunk> {
    rt.block_on(async {
        let mut out = Vec::new();
        for d in docs {
            out.extend(router.process(d, ctx).await.unwrap());
        }
        out
    })
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let counter = TokenCounter::from_file(&default_tokenizer_path())
        .expect("run scripts/fetch-model.sh first");
    let router = ChunkRouter::new(ChunkingConfig::default(), counter);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (ctx, _writer) = rt.block_on(async { context(store.clone()) });

    let slack = slack_documents(&rt);
    let code = code_documents(2 * 1024 * 1024);
    let inputs: Vec<(&str, &Vec<Document>)> = slack
        .iter()
        .map(|docs| ("slack_export_sample", docs))
        .chain([("generated_code", &code)])
        .collect();
    let mut group = c.benchmark_group("chunk_router");
    group.sample_size(10);
    for &(name, docs) in &inputs {
        group.throughput(Throughput::Bytes(text_bytes(docs)));
        group.bench_function(name, |b| b.iter(|| chunk_all(&rt, &router, docs, &ctx)));
    }
    group.finish();

    let mut group = c.benchmark_group("batch_writer");
    group.sample_size(10);
    for &(name, docs) in &inputs {
        let chunks = chunk_all(&rt, &router, docs, &ctx);
        let bytes: u64 = chunks.iter().map(|c| c.text.len() as u64).sum();
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = tempfile::tempdir().unwrap();
                let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(out.path()).unwrap());
                let chunks = chunks.clone();
                rt.block_on(async {
                    Topology::new(
                        TopologyConfig::default(),
                        store.clone(),
                        Shutdown::default(),
                    )
                    .from_stream("chunks", futures::stream::iter(chunks))
                    .then_stream(BatchWriter::new(BatchWriterConfig::default(), store))
                    .run(|_| {})
                    .await
                    .unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(throughput, benches);
criterion_main!(throughput);

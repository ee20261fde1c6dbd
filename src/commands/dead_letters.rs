//! `kass dead-letters list|reprocess`: what failed, why, and re-running what can be re-run.
//!
//! Re-run by what the letter's item is (its `item_kind`; for letters written before kinds were
//! recorded, told from the stage that wrote them): vectors Chroma did not take are stored again
//! without embedding when they are of the collection's model; chunks are embedded again; batch
//! references are loaded again; event notifications that could not be read are read again, and
//! the batches they name embedded, once they parse. Inputs and documents of the fetch half (a
//! malformed file) and single malformed chunks of a batch need their input fixed: they are
//! listed, not re-run. A re-run letter is deleted once its run ends: either its item is stored
//! now, or the run wrote a new letter with the current reason.

use anyhow::Result;

use kass::config::KassConfig;
use kass::split::EmbedHalf;
use kass_pipeline::batch::BatchRef;
use kass_pipeline::dead_letter::{self, DeadLetter};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::build_store;
use kass_pipeline::{Chunk, EmbeddedChunk, ItemKind};

use crate::ConfigArg;

#[derive(clap::Args, Debug)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// One line per dead letter: stage, error type, source, item and reason.
    List {
        /// Only letters of this stage (e.g. chroma_sink, embed, batch_loader).
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Re-runs the letters whose stage can be re-run; deletes each once re-run.
    Reprocess {
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A letter's item, read as its kind.
enum Item {
    Vectors(EmbeddedChunk),
    Chunk(Chunk),
    Batch(BatchRef),
    /// An event notification (its body) that could not be read when it arrived: re-run once
    /// this kass reads it (a newer envelope, a fixed body).
    Event(String),
    /// Needs its input fixed, then a new fetch.
    NotRerunnable,
}

fn item_of(letter: &DeadLetter) -> Result<Item, String> {
    let parse_error = |e: serde_json::Error| format!("item of a {} letter: {e}", letter.stage);
    let item = || letter.item.clone();
    Ok(match letter.item_kind {
        ItemKind::Vectors => Item::Vectors(serde_json::from_value(item()).map_err(parse_error)?),
        ItemKind::Chunk => Item::Chunk(serde_json::from_value(item()).map_err(parse_error)?),
        ItemKind::Batch => Item::Batch(serde_json::from_value(item()).map_err(parse_error)?),
        ItemKind::Event => Item::Event(
            letter
                .item
                .as_str()
                .ok_or_else(|| {
                    format!("item of a {} letter is not the event's text", letter.stage)
                })?
                .to_string(),
        ),
        // One chunk of a batch (blank text, no id): the file needs fixing, then a re-announce.
        ItemKind::Input | ItemKind::Document | ItemKind::BatchChunk | ItemKind::Other => {
            Item::NotRerunnable
        }
    })
}

pub async fn dead_letters(args: DeadLettersArgs) -> Result<()> {
    match args.action {
        Action::List { stage, config } => list(stage, config).await,
        Action::Reprocess { stage, config } => reprocess(stage, config).await,
    }
}

async fn letters(
    config: &KassConfig,
    stage: &Option<String>,
) -> Result<(
    std::sync::Arc<dyn kass_pipeline::store::ObjectStore>,
    Vec<(String, DeadLetter)>,
)> {
    let store = build_store(&config.store).await?;
    let mut all = dead_letter::list(store.as_ref()).await?;
    if let Some(stage) = stage {
        all.retain(|(_, l)| &l.stage == stage);
    }
    Ok((store, all))
}

async fn list(stage: Option<String>, config: ConfigArg) -> Result<()> {
    let config = KassConfig::load(&config.config)?;
    let (store, all) = letters(&config, &stage).await?;
    for (key, letter) in &all {
        let reason: String = letter.reason.chars().take(200).collect();
        println!(
            "{} {} {} {} {}: {}\n    {}",
            letter.failed_at.format("%Y-%m-%dT%H:%M:%SZ"),
            letter.stage,
            letter.error_type,
            letter.source,
            letter.item_id,
            reason,
            key
        );
    }
    println!(
        "{} dead letter(s) in {}",
        all.len(),
        store.location(dead_letter::DEAD_LETTER_PREFIX)
    );
    Ok(())
}

async fn reprocess(stage: Option<String>, config: ConfigArg) -> Result<()> {
    let config = KassConfig::load(&config.config)?;
    let (store, all) = letters(&config, &stage).await?;
    let mut vectors = (Vec::new(), Vec::new());
    let mut chunks = (Vec::new(), Vec::new());
    let mut batches = (Vec::new(), Vec::new());
    let mut events = Vec::new();
    let mut kept = 0usize;
    for (key, letter) in &all {
        match item_of(letter) {
            Ok(Item::Vectors(v)) => {
                vectors.0.push(v);
                vectors.1.push(key.clone());
            }
            Ok(Item::Chunk(c)) => {
                chunks.0.push(c);
                chunks.1.push(key.clone());
            }
            Ok(Item::Batch(b)) => {
                batches.0.push(b);
                batches.1.push(key.clone());
            }
            Ok(Item::Event(body)) => events.push((key.clone(), body)),
            Ok(Item::NotRerunnable) => kept += 1,
            Err(reason) => {
                kept += 1;
                eprintln!("warning: {key}: {reason}; kept");
            }
        }
    }
    if vectors.0.is_empty() && chunks.0.is_empty() && batches.0.is_empty() && events.is_empty() {
        println!("kass dead-letters: nothing to re-run ({kept} letter(s) need their input fixed)");
        return Ok(());
    }
    let half = EmbedHalf::connect(config, store.clone(), Shutdown::default()).await?;
    for (key, body) in events {
        let mut announced = half.announced();
        match announced.add_body(&body) {
            Ok(_) => {
                batches.0.extend(announced.batches);
                batches.1.push(key);
            }
            Err(e) => {
                kept += 1;
                eprintln!("warning: {key}: still unreadable ({e}); kept");
            }
        }
    }
    // Vectors of another model than the collection's cannot be stored: embed their chunks.
    let model = half.embedder().model().clone();
    let (same, other): (Vec<_>, Vec<_>) = vectors.0.into_iter().partition(|v| v.model == model);
    chunks.0.extend(other.into_iter().map(|v| v.chunk));
    let mut stored = 0;
    let mut new_letters = 0;
    for report in [
        half.store_vectors(same).await?,
        half.embed_chunks(chunks.0).await?,
        half.embed(batches.0).await?,
    ] {
        stored += report.outputs;
        new_letters += report.dead_letters;
    }
    let mut deleted = 0;
    for key in vectors.1.iter().chain(&chunks.1).chain(&batches.1) {
        store.delete(key).await?;
        deleted += 1;
    }
    println!(
        "kass dead-letters: {deleted} letter(s) re-run: {stored} chunk(s) stored, {new_letters} new dead letter(s); {kept} kept (their input needs fixing)"
    );
    Ok(())
}

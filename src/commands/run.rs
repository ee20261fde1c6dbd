//! `kass run` and `kass fetch`.

use std::time::Instant;

use anyhow::{Context, Result};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::build_store;

use crate::progress::Progress;
use crate::ConfigArg;
use kass::assembly::{
    build_embedder, connect_chroma, embed_half, fetch_half, load_cursors, record_fetch_success,
    save_cursors, FetchPlan,
};
use kass::config::KassConfig;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Let sources delete more than their `max_deletion_share` of documents this run.
    #[arg(long)]
    pub allow_deletions: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Read every input, ignoring the cursors in `_state/` (they are still saved after).
    #[arg(long)]
    pub full: bool,
    /// Let sources delete more than their `max_deletion_share` of documents this run (after
    /// a run said it withheld deletions, and you checked the source's configuration).
    #[arg(long)]
    pub allow_deletions: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both halves in this process.
    Whole,
    /// Stop at the batch files.
    FetchHalf,
}

/// `kass fetch`: the fetch half, resuming from the cursors unless `--full`.
pub async fn fetch(args: FetchArgs) -> Result<()> {
    run_mode(
        &args.config,
        Mode::FetchHalf,
        !args.full,
        args.allow_deletions,
    )
    .await
}

pub async fn run(args: RunArgs, mode: Mode) -> Result<()> {
    run_mode(&args.config, mode, false, args.allow_deletions).await
}

async fn run_mode(
    config_arg: &ConfigArg,
    mode: Mode,
    resume: bool,
    allow_deletions: bool,
) -> Result<()> {
    let config = KassConfig::load(&config_arg.config)?;
    let store = build_store(&config.store).await?;
    // A fetch always saves its cursors (a later run may resume); it reads from them only
    // when resuming. `kass run` keeps only those of sources that need their state every run
    // (API sources); it reads the others whole, and skips stored chunks.
    let mut cursors = load_cursors(&config, store.as_ref()).await?;
    for source in &config.sources {
        let keep = match mode {
            Mode::FetchHalf => true,
            Mode::Whole => source.keeps_state(),
        };
        if !keep {
            cursors.remove(source.name());
        } else if !resume && !source.keeps_state() {
            cursors.insert(source.name().to_string(), Default::default());
        }
    }
    let plan = FetchPlan {
        cursors,
        allow_deletions,
    };
    // The embedder (a local model takes ~0.1 s to load) on another thread while the fetch
    // half is built (its tokenizer takes ~0.02 s): a run's start-up is the longer of the two.
    let embedder = match mode {
        Mode::Whole => {
            let config = config.clone();
            Some(tokio::task::spawn_blocking(move || build_embedder(&config)))
        }
        Mode::FetchHalf => None,
    };
    let shutdown = Shutdown::default();
    watch_ctrl_c(shutdown.clone());
    let interrupted = shutdown.clone();
    let batches = fetch_half(&config, store.clone(), shutdown, &plan)?;
    let embed = match embedder {
        Some(loading) => {
            let embedder = loading.await.context("loading the embedder panicked")??;
            let target = connect_chroma(&config, &embedder).await?;
            Some((embedder, target))
        }
        None => None,
    };
    let started = Instant::now();
    let progress = Progress::start(match mode {
        Mode::FetchHalf => "batch files",
        Mode::Whole => "chunks stored",
    });
    let embedder_model = embed.as_ref().map(|(e, _)| e.model().clone());
    let collection = config.chroma.collection.clone();
    let (outputs, chunks) = match mode {
        Mode::FetchHalf => {
            let mut chunks = 0usize;
            let report = batches
                .run(|batch| {
                    chunks += batch.chunk_count;
                    progress.batch_written(&batch);
                })
                .await?;
            (report, chunks)
        }
        Mode::Whole => {
            let mut recovered = kass_pipeline::dead_letter::Recovered::default();
            let (embedder, target) = embed.expect("built for a whole run");
            let report = embed_half(&config, batches, store.clone(), embedder, target)
                .run(|chunk| {
                    recovered.chunks.insert(chunk.id);
                    progress.chunk_done();
                })
                .await?;
            kass::split::retire_letters(store.as_ref(), &recovered).await;
            (report, recovered.chunks.len())
        }
    };
    progress.finish();
    let interrupted = interrupted.is_triggered();
    record_fetch_success(&config, interrupted);
    // The pipeline drained (also when interrupted): every input a cursor records as read is
    // in a written batch file.
    save_cursors(&plan.cursors, store.as_ref()).await?;
    let what = match mode {
        Mode::FetchHalf => format!("{} batch files ({chunks} chunks)", outputs.outputs),
        Mode::Whole => format!(
            "{chunks} new or changed chunks embedded with {} into Chroma collection `{collection}`",
            embedder_model
                .as_deref()
                .map_or("?".to_string(), |m| m.to_string())
        ),
    };
    println!(
        "kass {}: {what} in {:.1}s; store {}; {} dead letter(s){}",
        if mode == Mode::Whole { "run" } else { "fetch" },
        started.elapsed().as_secs_f64(),
        store.location(""),
        outputs.dead_letters,
        if outputs.dead_letters > 0 {
            " under _dead_letter/"
        } else {
            ""
        }
    );
    if interrupted {
        // Everything read was written; the sources did not finish. Say so, and exit like a
        // program stopped by SIGINT, so scripts do not take this for a complete run.
        eprintln!("interrupted: sources stopped early; run again to fetch the rest");
        std::process::exit(130);
    }
    Ok(())
}

/// First Ctrl-C: stop reading sources and let in-flight work drain. Second: exit at once.
pub fn watch_ctrl_c(shutdown: Shutdown) {
    tokio::spawn(async move {
        if interrupt().await {
            eprintln!("interrupt: finishing in-flight work (Ctrl-C again to abort)");
            shutdown.trigger();
            if interrupt().await {
                std::process::exit(130);
            }
        }
    });
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (what `kill`, systemd and container runtimes send):
/// either asks for the same orderly stop. `false` if no signal can be watched.
async fn interrupt() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                int = tokio::signal::ctrl_c() => int.is_ok(),
                _ = term.recv() => true,
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

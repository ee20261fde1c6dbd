//! `kass`: keeps a vector store filled with a team's chat, issue and document history.

mod commands;
mod progress;

use kass::logging;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kass",
    version,
    about = "Knowledge-base ingestion: sources -> chunks -> batches -> vectors"
)]
struct Cli {
    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464).
    #[arg(long, global = true, env = "KASS_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in one process: sources -> batches -> embed half.
    Run(commands::run::RunArgs),
    /// Run only the fetch half: sources -> transform -> chunk router -> batch files.
    Fetch(commands::run::FetchArgs),
    /// Run only the embed half over batch files: given keys, a prefix, or the bucket's S3
    /// events from an SQS queue (--listen sqs://QUEUE).
    Embed(commands::embed::EmbedArgs),
    /// Re-embed the batches of a date range (partition dates), in one process; idempotent.
    Replay(commands::embed::ReplayArgs),
    /// Write the bucket notifications that announce batch files (one rule per source
    /// prefix); idempotent, keeps unrelated rules.
    SetupTriggers(commands::triggers::SetupTriggersArgs),
    /// Print the bucket's notification rules and warn about sources without one.
    CheckTriggers(commands::triggers::CheckTriggersArgs),
    /// List the dead letters with their reasons, or re-run them (`reprocess`).
    DeadLetters(commands::dead_letters::DeadLettersArgs),
    /// Search the collection: embeds the text with the collection's model, prints ranked chunks.
    Query(commands::query::QueryArgs),
    /// Count the collection's chunks per source, with its model and dimension.
    Stats(commands::query::StatsArgs),
    /// One screen for an operator: per source the last fetch, backlog and cursor position;
    /// dead letters by stage and kind; the collection's count per source and model (--json).
    Status(commands::status::StatusArgs),
    /// Score retrieval on a BEIR-format labelled set: nDCG, recall and MRR at k.
    Eval(commands::eval::EvalArgs),
    /// Print a summary of one batch file (a path on disk, or a key in the configured store).
    Inspect(commands::inspect::InspectArgs),
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main())
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    logging::init_logging(cli.log_format);
    if let Some(addr) = cli.metrics_addr {
        if let Err(e) = logging::serve_metrics(addr) {
            eprintln!("Error: {}", logging::error_text(&e));
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args, commands::run::Mode::Whole).await,
        Command::Fetch(args) => commands::run::fetch(args).await,
        Command::Embed(args) => commands::embed::embed(args).await,
        Command::Replay(args) => commands::embed::replay(args).await,
        Command::SetupTriggers(args) => commands::triggers::setup(args).await,
        Command::CheckTriggers(args) => commands::triggers::check(args).await,
        Command::DeadLetters(args) => commands::dead_letters::dead_letters(args).await,
        Command::Inspect(args) => commands::inspect::inspect(args).await,
        Command::Query(args) => commands::query::query(args).await,
        Command::Eval(args) => commands::eval::eval(args).await,
        Command::Stats(args) => commands::query::stats(args).await,
        Command::Status(args) => commands::status::status(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", logging::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// `--config` shared by the commands that read kass.toml.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// Path to kass.toml.
    #[arg(short, long, env = "KASS_CONFIG", default_value = "kass.toml")]
    pub config: PathBuf,
}

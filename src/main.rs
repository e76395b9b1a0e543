//! The `hoist` command: `serve` runs the gateway, `push` runs the same pipeline on a file,
//! `config` prints the effective configuration, `healthcheck` asks a running server.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hoist::config::Config;

use cli::Sources;

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Stream container image archives into an OCI registry",
    after_help = "Configuration: defaults < --config FILE < HOIST_* environment variables < flags.\n\
                  `hoist config` prints the result."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP gateway.
    Serve {
        #[command(flatten)]
        sources: Sources,
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks one; env HOIST_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Push one image archive without the server: the same pipeline, the same report.
    #[command(after_help = cli::push::AFTER_HELP)]
    Push(cli::push::PushArgs),
    /// Make a new API token: prints it (shown once) and the entry for the tokens file.
    Token {
        /// The client's name, shown in logs and push reports.
        #[arg(long)]
        name: String,
        /// A repository glob the token may push to (`team-a/**`); repeat for more.
        #[arg(long = "repository", required = true)]
        repositories: Vec<String>,
    },
    /// Print the effective configuration (secrets redacted) and where each value came from.
    Config {
        #[command(flatten)]
        sources: Sources,
        /// Address to listen on, as `serve --listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Exit 0 when the server this configuration describes answers GET /healthz (for a
    /// container HEALTHCHECK: the image has no curl). Asks the admin listener when set.
    Healthcheck {
        #[command(flatten)]
        sources: Sources,
        /// Address the server listens on, as `serve --listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; a usage error is EX_USAGE, never
            // clap's 2, which `hoist push` keeps for a bad archive.
            let _ = e.print();
            return match e.use_stderr() {
                true => ExitCode::from(cli::USAGE),
                false => ExitCode::SUCCESS,
            };
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        // Exit codes of its own (`hoist push --help`).
        Command::Push(args) => return Ok(ExitCode::from(cli::push::run(args))),
        Command::Serve { sources, listen } => {
            let config = sources.load(listen, None)?;
            hoist::telemetry::init_logs(config.log_format);
            runtime()?.block_on(serve(config))?;
        }
        Command::Token { name, repositories } => {
            let new = hoist::auth::tokens::generate(&name, &repositories)?;
            println!(
                "# The token for {name} (shown once; hoist keeps only its SHA-256):\n{}\n\n# Add this to the file [auth] tokens_file names:\n{}",
                new.token.0, new.entry
            );
        }
        Command::Config { sources, listen } => {
            let flags = sources.flags(listen, None);
            print!("{}", Config::effective(sources.config.as_deref(), &flags)?);
        }
        Command::Healthcheck { sources, listen } => {
            let config = sources.load(listen, None)?;
            runtime()?.block_on(healthcheck(config))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Before binding: an open gateway off loopback is refused without ever listening.
    let state = hoist::state(config)?;
    let config = state.pusher.config.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding listen = {}", config.listen))?;
    let admin = match config.admin_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding admin_listen = {a}"))?,
        ),
        None => None,
    };
    let addr = listener.local_addr()?;
    let admin_addr = admin.as_ref().map(|l| l.local_addr()).transpose()?;
    tracing::info!(
        %addr,
        admin = admin_addr.map(|a| a.to_string()),
        registry = %config.registry,
        log_format = %config.log_format,
        max_connections = config.max_connections,
        "hoist serving"
    );
    println!("hoist listening on http://{addr}");
    if let Some(a) = admin_addr {
        println!("hoist admin on http://{a}");
    }
    Ok(hoist::run(listener, admin, state, shutdown_signal()).await?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// GET /healthz on the configured listener (0.0.0.0 and :: asked on loopback).
async fn healthcheck(config: Config) -> anyhow::Result<()> {
    let mut addr = config.admin_listen.unwrap_or(config.listen);
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
    println!("ok: {url}");
    Ok(())
}

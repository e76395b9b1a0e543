//! The `hoist` command: `serve` runs the gateway, `push` runs the same pipeline on a file,
//! `config` prints the effective configuration, `healthcheck` asks a running server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hoist::archive::input::CHUNK;
use hoist::codec::LayerCompression;
use hoist::config::{Config, Flags};

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

/// Where the configuration comes from; shared by every subcommand.
#[derive(Args)]
struct Sources {
    /// TOML config file (every key and its default: config/hoist.toml). HOIST_* environment
    /// variables override it, and flags override both.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Backend registry URL (default http://127.0.0.1:5000; env HOIST_REGISTRY).
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
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
    /// Push one image archive without the server: the same pipeline, the same JSON report.
    #[command(
        after_help = "Examples:\n  hoist push app.tar.gz team/app:1.0 --registry https://registry.example\n  \
                      docker save app:1 | hoist push - team/app:1\n  \
                      hoist push images.tar            # names from the archive (RepoTags, ref.name)\n\n\
                      Exits 0 and prints the report (JSON) on success; exits 1 and prints\n\
                      {\"error\": {\"code\", \"message\"}} on stderr on failure."
    )]
    Push {
        /// The archive: docker save, podman/skopeo docker-archive or oci-archive, optionally
        /// gzip/zstd/xz/bzip2-compressed; `-` reads it from stdin.
        #[arg(value_name = "FILE")]
        file: String,
        /// Where to push: REPOSITORY[:TAG]. Optional: without it every image is pushed under
        /// the names the archive gives it; without :TAG, under the archive's tags.
        #[arg(value_name = "REPOSITORY[:TAG]")]
        reference: Option<String>,
        #[command(flatten)]
        sources: Sources,
        /// An extra tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// What to do with uncompressed layers: gzip (default), zstd or keep.
        #[arg(long, value_name = "HOW")]
        layer_compression: Option<LayerCompression>,
    },
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve { sources, listen } => {
            let config = load(&sources, listen, None)?;
            hoist::telemetry::init_logs(config.log_format);
            runtime.block_on(serve(config))
        }
        Command::Push {
            file,
            reference,
            sources,
            tags,
            layer_compression,
        } => {
            let config = load(&sources, None, layer_compression)?;
            hoist::telemetry::init_logs(config.log_format);
            let code = runtime.block_on(push(config, file, reference, tags))?;
            std::process::exit(code);
        }
        Command::Token { name, repositories } => {
            let new = hoist::auth::tokens::generate(&name, &repositories)?;
            println!(
                "# The token for {name} (shown once; hoist keeps only its SHA-256):\n{}\n\n# Add this to the file [auth] tokens_file names:\n{}",
                new.token.0, new.entry
            );
            Ok(())
        }
        Command::Config { sources, listen } => {
            let flags = flags(&sources, listen, None);
            print!("{}", Config::effective(sources.config.as_deref(), &flags)?);
            Ok(())
        }
        Command::Healthcheck { sources, listen } => {
            let config = load(&sources, listen, None)?;
            runtime.block_on(healthcheck(config))
        }
    }
}

fn flags(sources: &Sources, listen: Option<String>, lc: Option<LayerCompression>) -> Flags {
    Flags {
        listen,
        registry: sources.registry.clone(),
        layer_compression: lc,
    }
}

fn load(
    sources: &Sources,
    listen: Option<String>,
    lc: Option<LayerCompression>,
) -> anyhow::Result<Config> {
    let flags = flags(sources, listen, lc);
    Ok(Config::load(sources.config.as_deref(), &flags)?)
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

async fn push(
    config: Config,
    file: String,
    reference: Option<String>,
    tags: Vec<String>,
) -> anyhow::Result<i32> {
    let target = match reference {
        Some(r) => {
            let (repository, tag) =
                hoist::oci::reference::parse_target(&r).map_err(|e| anyhow::anyhow!("{e}"))?;
            hoist::push::Target::Named { repository, tag }
        }
        None => hoist::push::Target::FromArchive,
    };
    let request = hoist::push::Request {
        target,
        extra_tags: tags,
        layer_compression: config.layer_compression,
        dry_run: false,
        platforms: Vec::new(),
        events: hoist::push::events::Events::none(),
        // Local, with the operator's own config and credentials.
        client: Arc::new(hoist::auth::Client {
            name: "cli".into(),
            ..hoist::auth::Client::anonymous()
        }),
    };
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if file == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {file}"))?,
        )
    };
    let pusher = Arc::new(hoist::push::Pusher::new(config)?);
    let body = tokio_util::io::ReaderStream::with_capacity(input, CHUNK);
    match pusher.push(request, body).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(0)
        }
        Err(e) => {
            eprintln!("{}", serde_json::to_string_pretty(&e.body())?);
            Ok(1)
        }
    }
}

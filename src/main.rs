//! The `hoist` command: `serve` runs the gateway, `push` runs the same pipeline on a file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hoist::archive::input::CHUNK;
use hoist::codec::LayerCompression;
use hoist::config::{Config, Flags};

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Stream container image archives into an OCI registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP gateway.
    Serve {
        /// TOML config file (see config/hoist.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks one).
        #[arg(long)]
        listen: Option<String>,
        /// Backend registry URL (default http://127.0.0.1:5000).
        #[arg(long)]
        registry: Option<String>,
    },
    /// Push one archive file (or `-` for stdin) without the server.
    Push {
        file: String,
        /// REPOSITORY[:TAG]; leave out to use the names in the archive.
        reference: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        registry: Option<String>,
        /// Extra tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// gzip, zstd or keep.
        #[arg(long)]
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hoist=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            registry,
        } => {
            let flags = Flags {
                listen,
                registry,
                layer_compression: None,
            };
            let config = Config::load(config.as_deref(), &flags)?;
            runtime.block_on(serve(config))
        }
        Command::Push {
            file,
            reference,
            config,
            registry,
            tags,
            layer_compression,
        } => {
            let flags = Flags {
                listen: None,
                registry,
                layer_compression,
            };
            let config = Config::load(config.as_deref(), &flags)?;
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
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Before binding: an open gateway off loopback is refused without ever listening.
    let listen = config.listen;
    let registry = config.registry.clone();
    let state = hoist::state(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, %registry, "hoist serving");
    println!("hoist listening on http://{addr}");
    Ok(hoist::run(listener, state, shutdown_signal(), Duration::from_secs(30)).await?)
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

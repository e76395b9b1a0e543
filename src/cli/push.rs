//! `hoist push FILE [REPOSITORY[:TAG]]`: the server's pipeline on one archive, with progress
//! on stderr, the result on stdout and an exit code a script can act on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hoist::archive::input::CHUNK;
use hoist::codec::LayerCompression;
use hoist::config::Config;
use hoist::push::events::Events;
use hoist::push::{Learned, PushError, Pusher, Request, Target};
use hoist::report::Report;
use tokio::io::AsyncRead;

use super::cache_file::CacheFile;
use super::exit;
use super::progress::{self, Mode};
use super::{Sources, summary};

/// `hoist push`'s help, after the options.
pub const AFTER_HELP: &str = "\
Examples:
  hoist push app.tar.gz team/app:1.0 --registry https://registry.example
  docker save app:1 | hoist push - team/app:1
  hoist push images.tar            # names from the archive (RepoTags, ref.name)
  hoist push --dry-run --json app.tar team/app:1

Output: progress on stderr (a bar on a terminal, a plain line every few seconds otherwise;
none with --quiet); on stdout one summary line per image, or with --json the report (or on
failure {\"error\": {\"code\", \"message\"}}) as JSON. Without --json a failure is one line on
stderr: `hoist: CODE: message`.

Exit codes:
  0   pushed (a dry run: would push)
  1   anything else (a fault of hoist's own: INTERNAL)
  2   the archive is bad: unreadable, not an image archive, images not what they claim,
      or it cannot be pushed as asked (no name for an image, a platform it lacks)
  3   the registry failed or refused (REGISTRY_* codes: unreachable, timeout, 5xx, 401/403)
  64  bad usage: unknown flag, invalid reference, tag or platform, invalid configuration
  66  the archive file cannot be opened

Cache: where blobs were pushed (per registry) is kept in $XDG_CACHE_HOME/hoist/locations.json
(else ~/.cache/hoist/), so a later push mounts a layer the registry already holds in another
repository instead of sending it again. --no-cache neither reads nor writes it.";

/// `hoist push`'s arguments.
#[derive(Args)]
pub struct PushArgs {
    /// The archive: docker save, podman/skopeo docker-archive or oci-archive, optionally
    /// gzip/zstd/xz/bzip2-compressed; `-` reads it from stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// Where to push: REPOSITORY[:TAG]. Optional: without it every image is pushed under
    /// the names the archive gives it; without :TAG, under the archive's tags.
    #[arg(value_name = "REPOSITORY[:TAG]", value_parser = parse_reference)]
    reference: Option<(String, Option<String>)>,
    #[command(flatten)]
    sources: Sources,
    /// An extra tag (repeatable).
    #[arg(long = "tag", value_name = "TAG", value_parser = parse_tag)]
    tags: Vec<String>,
    /// What to do with uncompressed layers: gzip (default), zstd or keep.
    #[arg(long, value_name = "HOW")]
    layer_compression: Option<LayerCompression>,
    /// Read and verify the whole archive, write nothing: the report says what a push would
    /// upload, find or mount.
    #[arg(long)]
    dry_run: bool,
    /// Push only this platform of a multi-platform image (repeatable); the index is
    /// rewritten to list the platforms pushed.
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platforms: Vec<String>,
    /// No progress on stderr: only the result.
    #[arg(long, short)]
    quiet: bool,
    /// The report as JSON on stdout (the server's 201 body), or the error body on failure.
    #[arg(long)]
    json: bool,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    progress_interval: Duration,
    /// Neither read nor write the cache of where blobs are.
    #[arg(long)]
    no_cache: bool,
}

fn parse_reference(s: &str) -> Result<(String, Option<String>), String> {
    hoist::oci::reference::parse_target(s).map_err(|e| e.to_string())
}

fn parse_tag(s: &str) -> Result<String, String> {
    match hoist::oci::reference::valid_tag(s) {
        true => Ok(s.to_string()),
        false => Err("not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})".into()),
    }
}

fn parse_platform(s: &str) -> Result<String, String> {
    match hoist::oci::reference::valid_platform(s) {
        true => Ok(s.to_string()),
        false => Err("expected os/architecture[/variant], lowercase (linux/arm64/v8)".into()),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive number of seconds".into())
}

/// Runs the push; returns the exit code.
pub fn run(args: PushArgs) -> u8 {
    let config = match args.sources.load(None, args.layer_compression) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hoist: {e:#}");
            return exit::USAGE;
        }
    };
    hoist::telemetry::init_logs_filtered(config.log_format, "hoist=warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hoist: starting the runtime: {e}");
            return exit::FAILED;
        }
    };
    runtime.block_on(push(config, args))
}

async fn push(config: Config, args: PushArgs) -> u8 {
    let (input, size) = match open(&args.file).await {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("hoist: cannot read {}: {e}", args.file);
            return exit::NO_INPUT;
        }
    };
    let cache = (!args.no_cache)
        .then(CacheFile::default_path)
        .flatten()
        .map(|path| CacheFile::open(path, config.registry.as_str()));
    let pusher = match Pusher::new(config) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("hoist: {e}");
            return exit::USAGE;
        }
    };
    if let Some(c) = &cache {
        pusher.learn(c.learned());
    }
    let (events, rx) = Events::channel();
    let mode = Mode::choose(args.quiet, args.progress_interval);
    let follower = tokio::spawn(progress::follow(mode, size, rx));
    let body = tokio_util::io::ReaderStream::with_capacity(input, CHUNK);
    let request = request(&args, pusher.config.layer_compression, events);
    let result = pusher.push(request, body).await;
    let _ = follower.await;
    if let (Some(c), false) = (&cache, args.dry_run) {
        save(c, pusher.learned(), &result);
    }
    print(result, args.json)
}

fn request(args: &PushArgs, layer_compression: LayerCompression, events: Events) -> Request {
    let target = match &args.reference {
        Some((repository, tag)) => Target::Named {
            repository: repository.clone(),
            tag: tag.clone(),
        },
        None => Target::FromArchive,
    };
    Request {
        target,
        extra_tags: args.tags.clone(),
        layer_compression,
        dry_run: args.dry_run,
        platforms: args.platforms.clone(),
        // A process per push: nothing to replay from, and the file is read once.
        digest: None,
        events,
        // Local, with the operator's own config and credentials.
        client: Arc::new(hoist::auth::Client {
            name: "cli".into(),
            ..hoist::auth::Client::anonymous()
        }),
    }
}

/// The archive, and its size when it is a file.
async fn open(file: &str) -> std::io::Result<(Box<dyn AsyncRead + Unpin + Send>, Option<u64>)> {
    if file == "-" {
        return Ok((Box::new(tokio::io::stdin()), None));
    }
    let f = tokio::fs::File::open(file).await?;
    let size = f.metadata().await?.len();
    Ok((Box::new(f), Some(size)))
}

/// Writes what the push learned, unless there is nothing to keep (the pusher started from
/// the file's entries, so an empty export means the file had none and the push added none).
fn save(cache: &CacheFile, learned: Learned, result: &Result<Report, PushError>) {
    if learned == Learned::default() {
        return;
    }
    let used = result.as_ref().map(used_blobs).unwrap_or_default();
    if let Err(e) = cache.save(learned, &used) {
        eprintln!("hoist: warning: could not write the cache: {e}");
    }
}

/// Every blob the push placed: these come first in the cache.
fn used_blobs(report: &Report) -> HashSet<hoist::oci::Digest> {
    let blobs = report.images.iter().flat_map(|i| &i.blobs);
    blobs.map(|b| b.digest.clone()).collect()
}

/// The result on stdout (or the error on stderr without `--json`); the exit code.
fn print(result: Result<Report, PushError>, json: bool) -> u8 {
    let (text, code) = match (&result, json) {
        (Ok(report), true) => (to_json(report), exit::OK),
        (Ok(report), false) => (summary::summary(report), exit::OK),
        (Err(e), true) => (to_json(&e.body()), exit::for_error(e.status(), e.code())),
        (Err(e), false) => {
            eprintln!("hoist: {}: {e}", e.code());
            return exit::for_error(e.status(), e.code());
        }
    };
    print!("{text}");
    code
}

fn to_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialise");
    text.push('\n');
    text
}

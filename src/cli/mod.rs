//! The command line's own parts: where configuration comes from (shared by every
//! subcommand), and `hoist push` (progress, exit codes, the human summary, the cache of blob
//! locations kept between runs).

mod cache_file;
mod exit;
mod progress;
pub mod push;
mod summary;

use std::path::PathBuf;

use clap::Args;
use hoist::codec::LayerCompression;
use hoist::config::{Config, Flags};

pub use exit::USAGE;

/// Where the configuration comes from; shared by every subcommand.
#[derive(Args)]
pub struct Sources {
    /// TOML config file (every key and its default: config/hoist.toml). HOIST_* environment
    /// variables override it, and flags override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Backend registry URL (default http://127.0.0.1:5000; env HOIST_REGISTRY).
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
}

impl Sources {
    /// The flags as the config loader takes them.
    pub fn flags(&self, listen: Option<String>, lc: Option<LayerCompression>) -> Flags {
        Flags {
            listen,
            registry: self.registry.clone(),
            layer_compression: lc,
        }
    }

    /// Defaults < file < environment < flags, validated.
    pub fn load(
        &self,
        listen: Option<String>,
        lc: Option<LayerCompression>,
    ) -> anyhow::Result<Config> {
        let flags = self.flags(listen, lc);
        Ok(Config::load(self.config.as_deref(), &flags)?)
    }
}

//! What a caller asks of one push.

use std::sync::Arc;

use crate::auth::Client;
use crate::codec::LayerCompression;
use crate::oci::Digest;

/// Where the images go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/push/{repository}[:{tag}]`.
    Named {
        repository: String,
        tag: Option<String>,
    },
    /// `/push`: the names the archive carries.
    FromArchive,
}

/// One push, as asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub extra_tags: Vec<String>,
    pub layer_compression: LayerCompression,
    /// Read and verify everything, write nothing: the report says what would happen.
    pub dry_run: bool,
    /// Push only these platforms of a multi-platform image (`os/arch[/variant]`); empty: all.
    pub platforms: Vec<String>,
    /// The sha256 of the archive as sent, named by the client (`?digest=`): checked before
    /// anything is tagged, and what lets a re-push of the same bytes be replayed (`known`).
    pub digest: Option<Digest>,
    /// Where to tell how the push goes.
    pub events: super::events::Events,
    /// Who asks: every target must be in its scopes, mounts come only from repositories it
    /// may push to, and in pass-through mode its credentials reach the registry.
    pub client: Arc<Client>,
}

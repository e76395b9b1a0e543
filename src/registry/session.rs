//! An upload session that cancels itself. Opened by a POST (or adopted from a declined
//! mount), moved along by PATCHes, committed by `PUT ?digest=`. Dropped before it is
//! committed (a failure, an aborted task, a client gone) it is cancelled, so no session
//! outlives its push and the registry keeps no half-written upload.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::stall::{self, Progress};
use super::{Registry, RegistryError, Started, Upload};
use crate::oci::Digest;

/// An open upload session; see the module docs.
pub struct Session {
    registry: Arc<Registry>,
    /// The Location to use next; `None` once committed or cancelled.
    upload: Option<Upload>,
}

impl Session {
    /// Opens a session in `repo` with a POST.
    pub async fn open(registry: &Arc<Registry>, repo: &str) -> Result<Session, RegistryError> {
        match registry.start_upload(repo, None).await? {
            Started::Session(upload) => Ok(Session::adopt(registry.clone(), upload)),
            Started::Mounted => Err(RegistryError::Protocol {
                op: format!("POST blob upload in {repo}"),
                detail: "answered a plain upload request as a mount".into(),
            }),
        }
    }

    /// Takes charge of a session opened elsewhere (a mount the registry declined).
    pub fn adopt(registry: Arc<Registry>, upload: Upload) -> Session {
        Session {
            registry,
            upload: Some(upload),
        }
    }

    fn current(&self) -> &Upload {
        self.upload.as_ref().expect("a live session has a Location")
    }

    /// Sends the whole blob: one streamed PATCH (`len` sets Content-Length), or fixed-size
    /// chunks in chunked mode; given up when `progress` says the registry stalled. Returns
    /// the bytes the registry pulled.
    pub async fn send<S>(
        &mut self,
        body: S,
        len: Option<u64>,
        progress: Arc<Progress>,
    ) -> Result<u64, RegistryError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let upload = self.current().clone();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        let meter = crate::telemetry::SentMeter::current();
        let pulls = progress.clone();
        let ended = progress.clone();
        let body = body
            .inspect(move |r| {
                let n = r.as_ref().map_or(0, |b| b.len() as u64);
                counted.fetch_add(n, Ordering::Relaxed);
                meter.add(n as usize);
                pulls.took(n);
            })
            // After the last byte the registry owes an answer within the stall limit too.
            .chain(futures_util::stream::poll_fn(move |_| {
                ended.set_finished();
                std::task::Poll::Ready(None)
            }));
        let registry = &self.registry;
        let mut current = upload.clone();
        let transfer = async {
            if registry.chunk_size() == 0 {
                let body = reqwest::Body::wrap_stream(body);
                current = registry.patch_stream(&upload, body, len).await?;
            } else {
                registry.patch_chunks(&mut current, body).await?;
            }
            Ok(())
        };
        let op = format!("PATCH blob upload in {}", upload.repository);
        let result = stall::watch(transfer, &progress, registry.idle(), &op).await;
        // Whatever happened, the Location to go on from (or to cancel) is the latest one.
        self.upload = Some(current);
        result.map(|()| sent.load(Ordering::Relaxed))
    }

    /// Closes the session with the digest of what was sent; cancelled if that fails.
    pub async fn commit(mut self, digest: &Digest) -> Result<(), RegistryError> {
        let upload = self.upload.take().expect("a live session has a Location");
        let result = self.registry.finish_upload(&upload, digest).await;
        if result.is_err() {
            self.registry.cancel(&upload).await;
        }
        result
    }

    /// Cancels now and waits for the registry's answer.
    pub async fn cancel(mut self) {
        if let Some(upload) = self.upload.take() {
            self.registry.cancel(&upload).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let registry = self.registry.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { registry.cancel(&upload).await });
        }
    }
}

//! Multipart bodies: the text fields before the `file` part (`tag`) and the `file` part,
//! which is the archive. Everything before the archive is bounded in bytes and time: an
//! unbounded preamble or part header would let a client hold memory and a request forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::archive::ArchiveError;
use crate::push::PushError;

/// Reads a multipart body up to its `file` part, within `deadline` and `budget` bytes.
/// Returns the tags its `tag` fields name (comma-separated) and the `file` part.
pub async fn open(
    req: Request,
    budget: u64,
    deadline: Duration,
) -> Result<
    (
        Vec<String>,
        impl Stream<Item = Result<Bytes, multer::Error>> + Send + Unpin + 'static,
    ),
    PushError,
> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|e| bad(e.to_string()))?;
    let guard = Guard::new(budget);
    let body = guard.clone().wrap(req.into_body().into_data_stream());
    let limits = multer::SizeLimit::new().for_field("tag", budget);
    let mut form = multer::Multipart::with_constraints(
        body,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let found = tokio::time::timeout(deadline, fields(&mut form, budget)).await;
    let result = match found {
        Err(_) => Err(ArchiveError::BodyStalled {
            secs: deadline.as_secs(),
            received: guard.seen.load(Ordering::Relaxed),
        }
        .into()),
        Ok(r) => r,
    };
    if guard.tripped.load(Ordering::Relaxed) {
        return Err(ArchiveError::PreambleTooLarge { limit: budget }.into());
    }
    let (tags, file) = result?;
    guard.open.store(true, Ordering::Relaxed);
    Ok((tags, file))
}

/// Reads fields until `file`: `tag` fields are kept, other fields skipped.
/// A parser error; a text field over its size limit is a preamble over budget.
fn form_error(e: multer::Error, budget: u64) -> PushError {
    match e {
        multer::Error::FieldSizeExceeded { .. } => {
            ArchiveError::PreambleTooLarge { limit: budget }.into()
        }
        other => bad(other.to_string()),
    }
}

async fn fields(
    form: &mut multer::Multipart<'static>,
    budget: u64,
) -> Result<(Vec<String>, multer::Field<'static>), PushError> {
    let mut tags = Vec::new();
    let error = |e| form_error(e, budget);
    loop {
        let field = form.next_field().await.map_err(error)?;
        let Some(mut field) = field else {
            return Err(ArchiveError::NotAnArchive {
                detail: "the multipart body has no part named \"file\"".into(),
            }
            .into());
        };
        match field.name() {
            Some("file") => return Ok((tags, field)),
            Some("tag") => {
                let text = field.text().await.map_err(error)?;
                let named = text.split(',').map(str::trim).filter(|s| !s.is_empty());
                tags.extend(named.map(|s| s.chars().take(300).collect::<String>()));
            }
            _ => while field.chunk().await.map_err(error)?.is_some() {},
        }
    }
}

fn bad(detail: String) -> PushError {
    ArchiveError::NotAnArchive {
        detail: format!(
            "bad multipart body: {}",
            detail.chars().take(300).collect::<String>()
        ),
    }
    .into()
}

/// Counts the bytes fed to the multipart parser until the archive part opens; past the
/// budget the body fails, so the parser can never buffer more than the budget and one chunk.
#[derive(Clone)]
struct Guard {
    budget: u64,
    seen: Arc<AtomicU64>,
    open: Arc<AtomicBool>,
    tripped: Arc<AtomicBool>,
}

impl Guard {
    fn new(budget: u64) -> Guard {
        Guard {
            budget,
            seen: Arc::default(),
            open: Arc::default(),
            tripped: Arc::default(),
        }
    }

    fn wrap<S, E>(
        self,
        body: S,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        body.map(move |r| {
            let b = r.map_err(|e| std::io::Error::other(e.to_string()))?;
            if self.open.load(Ordering::Relaxed) {
                return Ok(b);
            }
            // Judged on what came before this chunk, so a large first chunk that holds a
            // small preamble and the start of the archive passes.
            if self.seen.fetch_add(b.len() as u64, Ordering::Relaxed) > self.budget {
                self.tripped.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("multipart preamble too large"));
            }
            Ok(b)
        })
    }
}

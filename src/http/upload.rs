//! The push endpoints: `PUT|POST /push[/{repository}[:{tag}]]`, raw or multipart bodies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::archive::ArchiveError;
use crate::archive::decode::{Counters, Feed};
use crate::config::LayerCompression;
use crate::push::{self, PushError, Target};

pub async fn push_named(
    State(state): State<AppState>,
    Path(spec): Path<String>,
    req: Request,
) -> Response {
    match crate::reference::parse_target(&spec) {
        Ok((repository, tag)) => handle(state, Target::Named { repository, tag }, req).await,
        Err(_) => ApiError(PushError::ReferenceInvalid {
            what: "URL reference",
            name: spec,
        })
        .into_response(),
    }
}

pub async fn push_from_archive(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Target::FromArchive, req).await
}

/// Query parameters: `tag` (repeatable), `layer_compression`.
fn query(
    req: &Request,
    default: LayerCompression,
) -> Result<(Vec<String>, LayerCompression), PushError> {
    let mut tags = Vec::new();
    let mut compression = default;
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "tag" => tags.push(v.into_owned()),
            "layer_compression" => {
                compression = v.parse().map_err(|_| PushError::ReferenceInvalid {
                    what: "layer_compression (gzip, zstd or keep)",
                    name: v.into_owned(),
                })?;
            }
            _ => {}
        }
    }
    Ok((tags, compression))
}

async fn handle(state: AppState, target: Target, req: Request) -> Response {
    let (extra_tags, layer_compression) = match query(&req, state.pusher.config.layer_compression) {
        Ok(q) => q,
        Err(e) => return ApiError(e).into_response(),
    };
    let limit = state.pusher.config.limits.request_bytes;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError(ArchiveError::RequestTooLarge { limit }.into()).into_response();
    }
    let Ok(permit) = state.slots.clone().try_acquire_owned() else {
        return ApiError(PushError::Busy).into_response();
    };
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut request = push::Request {
        target,
        extra_tags,
        layer_compression,
    };
    let (tx, rx) = mpsc::channel::<Feed>(8);
    let counters = Arc::new(Counters::default());
    let result = if multipart {
        let mut form = match axum::extract::Multipart::from_request(req, &state).await {
            Ok(m) => m,
            Err(e) => {
                return ApiError(
                    ArchiveError::NotAnArchive {
                        detail: format!("bad multipart body: {e}"),
                    }
                    .into(),
                )
                .into_response();
            }
        };
        // Text fields before `file` (e.g. `tag`) shape the push; the archive part is streamed.
        let file = loop {
            match form.next_field().await {
                Ok(Some(field)) if field.name() == Some("file") => break Some(field),
                Ok(Some(field)) if field.name() == Some("tag") => match field.text().await {
                    Ok(t) => request.extra_tags.extend(
                        t.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty()),
                    ),
                    Err(e) => return multipart_error(e),
                },
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(e) => return multipart_error(e),
            }
        };
        let Some(file) = file else {
            return ApiError(
                ArchiveError::NotAnArchive {
                    detail: "the multipart body has no part named \"file\"".into(),
                }
                .into(),
            )
            .into_response();
        };
        run(
            &state,
            request,
            rx,
            tx,
            counters.clone(),
            file.map(|r| r.map_err(|e| e.to_string())),
            limit,
            permit,
        )
        .await
    } else {
        let body = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(|e| e.to_string()));
        run(
            &state,
            request,
            rx,
            tx,
            counters.clone(),
            body,
            limit,
            permit,
        )
        .await
    };
    match result {
        Ok(report) => {
            crate::telemetry::metrics().succeeded(&report);
            (StatusCode::CREATED, axum::Json(report)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> Response {
    ApiError(
        ArchiveError::NotAnArchive {
            detail: format!("bad multipart body: {e}"),
        }
        .into(),
    )
    .into_response()
}

#[allow(clippy::too_many_arguments)]
async fn run<S>(
    state: &AppState,
    request: push::Request,
    rx: mpsc::Receiver<Feed>,
    tx: mpsc::Sender<Feed>,
    counters: Arc<Counters>,
    body: S,
    limit: u64,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<crate::report::Report, PushError>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let pusher = state.pusher.clone();
    let c2 = counters.clone();
    crate::telemetry::metrics().enter();
    // The push runs as its own task: if the client goes away the session still cleans up.
    let task = tokio::spawn(async move {
        let _permit = permit;
        pusher.push(request, rx, c2).await
    });
    let mut body = body;
    forward(
        &mut body,
        &tx,
        &counters,
        limit,
        state.pusher.config.client_idle_timeout,
    )
    .await;
    drop(tx);
    let result = task.await;
    crate::telemetry::metrics().leave();
    let result = result.unwrap_or_else(|e| {
        Err(PushError::Internal {
            detail: e.to_string(),
        })
    });
    if result.is_err() {
        // Read on a little, so a client still sending sees the answer instead of a reset.
        let drain = async { while body.next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
    result
}

/// Moves the body into the pipeline, counting bytes against the request limit.
async fn forward<S>(
    body: &mut S,
    tx: &mpsc::Sender<Feed>,
    counters: &Counters,
    limit: u64,
    idle: Duration,
) where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    loop {
        let chunk = match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                let received = counters.received.load(Ordering::Relaxed);
                let _ = tx
                    .send(Feed::Fail(ArchiveError::BodyStalled {
                        secs: idle.as_secs(),
                        received,
                    }))
                    .await;
                return;
            }
        };
        let feed = match chunk {
            Ok(b) => {
                let total = counters
                    .received
                    .fetch_add(b.len() as u64, Ordering::Relaxed)
                    + b.len() as u64;
                if total > limit {
                    Feed::Fail(ArchiveError::RequestTooLarge { limit })
                } else {
                    Feed::Chunk(b)
                }
            }
            Err(_) => Feed::Fail(ArchiveError::BodyIncomplete {
                received: counters.received.load(Ordering::Relaxed),
            }),
        };
        let stop = !matches!(feed, Feed::Chunk(_));
        if tx.send(feed).await.is_err() || stop {
            return;
        }
    }
    let _ = tx.send(Feed::End).await;
}

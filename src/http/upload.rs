//! The push endpoints: `PUT|POST /push[/{repository}[:{tag}]]`, raw or multipart bodies. Thin:
//! build a push request, hand the body to the pusher, render what comes back.

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::{ApiError, AppState};
use crate::archive::ArchiveError;
use crate::codec::LayerCompression;
use crate::push::{self, PushError, Target};
use crate::report::Report;

pub async fn push_named(
    State(state): State<AppState>,
    Path(spec): Path<String>,
    req: Request,
) -> Response {
    match crate::oci::reference::parse_target(&spec) {
        Ok((repository, tag)) => handle(state, Target::Named { repository, tag }, req).await,
        Err(_) => ApiError(PushError::ReferenceInvalid {
            what: "URL reference",
            name: spec.chars().take(300).collect(),
        })
        .into_response(),
    }
}

pub async fn push_from_archive(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Target::FromArchive, req).await
}

async fn handle(state: AppState, target: Target, req: Request) -> Response {
    match admit_and_push(state, target, req).await {
        Ok(report) => {
            crate::telemetry::metrics().succeeded(&report);
            (StatusCode::CREATED, axum::Json(report)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

async fn admit_and_push(
    state: AppState,
    target: Target,
    req: Request,
) -> Result<Report, PushError> {
    let config = &state.pusher.config;
    let (extra_tags, layer_compression) = query(&req, config.layer_compression)?;
    let limit = config.limits.request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ArchiveError::RequestTooLarge { limit }.into());
    }
    let _slot = state
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| PushError::Busy)?;
    let request = push::Request {
        target,
        extra_tags,
        layer_compression,
    };
    let metrics = crate::telemetry::metrics();
    metrics.enter();
    let result = if is_multipart(&req) {
        multipart(&state, request, req).await
    } else {
        state
            .pusher
            .push(request, req.into_body().into_data_stream())
            .await
    };
    metrics.leave();
    result
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
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
                compression = v.parse().map_err(|_| PushError::ParameterInvalid {
                    name: "layer_compression",
                    value: v.chars().take(100).collect(),
                    expected: "one of gzip, zstd or keep",
                })?;
            }
            _ => {}
        }
    }
    Ok((tags, compression))
}

/// A multipart body: text fields before `file` (e.g. `tag`) shape the push; the `file` part
/// is streamed as the archive.
async fn multipart(
    state: &AppState,
    mut request: push::Request,
    req: Request,
) -> Result<Report, PushError> {
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| bad_multipart(e.to_string()))?;
    let file = loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| bad_multipart(e.to_string()))?;
        match field {
            Some(f) if f.name() == Some("file") => break f,
            Some(f) if f.name() == Some("tag") => request.extra_tags.extend(tags(f).await?),
            Some(_) => continue,
            None => {
                return Err(ArchiveError::NotAnArchive {
                    detail: "the multipart body has no part named \"file\"".into(),
                }
                .into());
            }
        }
    };
    state
        .pusher
        .push(
            request,
            file.map(|r| r.map_err(|e: MultipartError| e.to_string())),
        )
        .await
}

/// A `tag` field: comma-separated tags.
async fn tags(field: Field<'_>) -> Result<Vec<String>, PushError> {
    let text = field
        .text()
        .await
        .map_err(|e| bad_multipart(e.to_string()))?;
    Ok(text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn bad_multipart(detail: String) -> PushError {
    ArchiveError::NotAnArchive {
        detail: format!("bad multipart body: {detail}"),
    }
    .into()
}

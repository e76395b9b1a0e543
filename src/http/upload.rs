//! The push endpoints: `PUT|POST /push[/{repository}[:{tag}]]`, raw or multipart bodies. Thin:
//! admit the request, hand the archive to the pusher, render what comes back.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, admission};
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

/// Admission in order (query, size, the archive's start), then a slot, then the push.
async fn admit_and_push(
    state: AppState,
    target: Target,
    req: Request,
) -> Result<Report, PushError> {
    let config = &state.pusher.config;
    let query = admission::query(&req, config.layer_compression)?;
    admission::check_length(&req, config.limits.request_bytes)?;
    let (form_tags, body) = admission::archive(req, config).await?;
    let mut extra_tags = query.tags;
    extra_tags.extend(form_tags);
    let _slot = state
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| PushError::Busy)?;
    let request = push::Request {
        target,
        extra_tags,
        layer_compression: query.layer_compression,
    };
    let metrics = crate::telemetry::metrics();
    metrics.enter();
    let result = state.pusher.push(request, body).await;
    metrics.leave();
    result
}

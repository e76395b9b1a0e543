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
    let target = crate::oci::reference::parse_target(&spec)
        .map(|(repository, tag)| Target::Named { repository, tag })
        .map_err(|_| PushError::ReferenceInvalid {
            what: "URL reference",
            name: spec.chars().take(300).collect(),
        });
    handle(state, target, req).await
}

pub async fn push_from_archive(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Ok(Target::FromArchive), req).await
}

async fn handle(state: AppState, target: Result<Target, PushError>, req: Request) -> Response {
    let config = &state.pusher.config;
    let early = target.and_then(|t| {
        let query = admission::query(&req, config.layer_compression)?;
        admission::check_length(&req, config.limits.request_bytes)?;
        Ok((t, query))
    });
    let (target, query) = match early {
        Ok(v) => v,
        Err(e) => {
            admission::drain(req).await;
            return ApiError(e).into_response();
        }
    };
    match admit_and_push(state, target, query, req).await {
        Ok(report) => {
            crate::telemetry::metrics().succeeded(&report);
            (StatusCode::CREATED, axum::Json(report)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// The archive's start, then a slot, then the push.
async fn admit_and_push(
    state: AppState,
    target: Target,
    query: admission::Query,
    req: Request,
) -> Result<Report, PushError> {
    let config = &state.pusher.config;
    let (form_tags, body) = admission::archive(req, config).await?;
    let mut extra_tags = query.tags;
    extra_tags.extend(form_tags);
    let Ok(_slot) = state.slots.clone().try_acquire_owned() else {
        admission::drain_body(body).await;
        return Err(PushError::Busy);
    };
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

//! The push endpoints: `PUT|POST /push[/{repository}[:{tag}]]`, raw or multipart bodies. Thin:
//! admit the request, hand the archive to the pusher, render what comes back.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, access, admission, progress};
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

/// Answers a push; a browser is offered only the Bearer challenge with a 401.
async fn handle(state: AppState, target: Result<Target, PushError>, req: Request) -> Response {
    let from_browser = req.headers().contains_key(header::ORIGIN);
    let mut response = answer(state, target, req).await;
    if from_browser {
        access::offer_browsers_bearer_only(&mut response);
    }
    response
}

async fn answer(state: AppState, target: Result<Target, PushError>, req: Request) -> Response {
    let config = &state.pusher.config;
    let early = target.and_then(|t| {
        let query = admission::query(&req, config.layer_compression)?;
        admission::check_length(&req, config.limits.request_bytes)?;
        Ok((t, query))
    });
    // Who (401), from where (403), where to (403) and the client's own slot (429): all
    // before a byte of the body counts.
    let early = match early {
        Ok((t, q)) => access::admit(&state, req.headers(), &t)
            .await
            .map(|a| (t, q, a)),
        Err(e) => Err(e),
    };
    let (target, query, client) = match early {
        Ok(v) => v,
        Err(e) => {
            admission::drain(req).await;
            return ApiError(e).into_response();
        }
    };
    let ndjson = admission::wants_ndjson(&req);
    match admit(&state, target, query, client, req).await {
        Err(e) => ApiError(e).into_response(),
        Ok(admitted) if ndjson => progress::stream(state, admitted),
        Ok(admitted) => match run(&state, admitted).await {
            Ok(report) => {
                let status = if report.dry_run {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                (status, axum::Json(report)).into_response()
            }
            Err(e) => ApiError(e).into_response(),
        },
    }
}

/// A push that passed admission: it holds a slot (and its client's), and its archive has
/// started.
pub(super) struct Admitted {
    pub slot: tokio::sync::OwnedSemaphorePermit,
    pub client: access::Admitted,
    pub request: push::Request,
    pub body: admission::Body,
}

/// The archive's start, then a slot.
async fn admit(
    state: &AppState,
    target: Target,
    query: admission::Query,
    client: access::Admitted,
    req: Request,
) -> Result<Admitted, PushError> {
    let config = &state.pusher.config;
    let (form_tags, body) = admission::archive(req, config).await?;
    let mut extra_tags = query.tags;
    extra_tags.extend(form_tags);
    let Ok(slot) = state.slots.clone().try_acquire_owned() else {
        admission::drain_body(body).await;
        return Err(PushError::Busy);
    };
    let request = push::Request {
        target,
        extra_tags,
        layer_compression: query.layer_compression,
        dry_run: query.dry_run,
        platforms: query.platforms,
        digest: query.digest,
        events: push::events::Events::none(),
        client: client.client.clone(),
    };
    Ok(Admitted {
        slot,
        client,
        request,
        body,
    })
}

/// Runs an admitted push to its end; counted in the metrics.
pub(super) async fn run(state: &AppState, admitted: Admitted) -> Result<Report, PushError> {
    let Admitted {
        slot,
        client,
        request,
        body,
    } = admitted;
    let metrics = crate::telemetry::metrics();
    metrics.enter();
    let result = state.pusher.push(request, body).await;
    metrics.leave();
    drop(slot);
    drop(client);
    if let Ok(report) = &result {
        metrics.succeeded(report);
    }
    result
}

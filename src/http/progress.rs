//! Following a push live: with `Accept: application/x-ndjson` an admitted push answers 200 at
//! once and streams one JSON object per line (`progress`, `blob`, `image`, then `done` or
//! `error`), in the spirit of the Docker Engine API's push and load streams. Failures before
//! admission keep their own status and JSON body.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

use super::AppState;
use super::upload::{Admitted, run};
use crate::push::events::Events;

/// Starts the push on its own task and answers with its events.
pub(super) fn stream(state: AppState, mut admitted: Admitted) -> Response {
    let (events, rx) = Events::channel();
    admitted.request.events = events;
    tokio::spawn(crate::telemetry::scoped(async move {
        if let Err(e) = run(&state, admitted).await {
            crate::telemetry::metrics().failed(e.code());
        }
    }));
    let lines = tokio_stream_of(rx).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("events serialise");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

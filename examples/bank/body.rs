//! Reading request bodies before any handler runs: the limits a hostile client meets, and
//! what shutdown needs to know about a connection.
//!
//! Every request's body is read whole here, under [`MAX_BODY_BYTES`] and the body deadline,
//! before the handler (and so its transaction) starts. A request refused here — an
//! unsupported `Content-Encoding` (`415`), a `Content-Length` over the limit (`413`, before
//! any of the body is read), a chunked body that passes it (`413`), a body that does not
//! arrive in time (`408`) or breaks off (`400`) — is answered with the service's JSON error
//! and `Connection: close`: the rest of its body is unread, so the connection cannot carry
//! another request, and the client must know not to reuse it.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;
use super::MAX_BODY_BYTES;

/// Whether a connection's current request has begun: its body is read and its handler is
/// running, or its response is still being written. One per connection, shared between the
/// connection's task (which reads it at shutdown) and this middleware (which sets it).
#[derive(Clone, Default)]
pub(crate) struct Begun(Arc<AtomicUsize>);

impl Begun {
    pub(crate) fn is_running(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }

    fn enter(&self) -> BegunGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        BegunGuard(self.0.clone())
    }
}

/// Marks a request begun until dropped, with the response body once hyper has written it.
struct BegunGuard(Arc<AtomicUsize>);

impl Drop for BegunGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request marked begun until hyper has sent it and drops
/// it, so that shutdown never drops a connection between a commit and its answer.
struct Tracked {
    body: Body,
    _begun: BegunGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Refuses what the service cannot read, reads the body whole within `timeout`, then runs
/// the handler with the body in memory. See the module docs.
pub(crate) async fn read_body(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(encoding) = parts.headers.get(CONTENT_ENCODING) {
        let identity = encoding
            .to_str()
            .is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"));
        if !identity {
            let mut response = refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
                format!(
                    "request bodies must be sent without a content-encoding; got `{}`",
                    String::from_utf8_lossy(encoding.as_bytes())
                ),
            );
            // RFC 7694: say which encodings are accepted.
            response
                .headers_mut()
                .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            return response;
        }
    }
    // hyper has already refused a `Content-Length` that is not a number.
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > MAX_BODY_BYTES as u64) {
        return too_large(&format!("content-length {declared}"));
    }
    let bytes =
        match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
                return too_large("the body");
            }
            Ok(Err(err)) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("the request body could not be read: {err}"),
                );
            }
            Err(_) => {
                return refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!("the request body did not arrive within {timeout:?}"),
                );
            }
        };
    let begun = parts.extensions.get::<Begun>().map(Begun::enter);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match begun {
        Some(begun) => response.map(|body| {
            Body::new(Tracked {
                body,
                _begun: begun,
            })
        }),
        None => response,
    }
}

fn too_large(what: &str) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("{what} exceeds the limit of {MAX_BODY_BYTES} bytes"),
    )
}

/// An error answered before the body was read to its end: the connection closes after it.
fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut response = ApiError::new(status, code, message).into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

//! Edge middleware: request ids and access logs, the request time limit, and
//! problem+json bodies for errors the framework raises itself.

use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage as _, ResponseError as _};
use tracing::Instrument as _;

use super::error::{problem_response, ApiError};
use super::state::AppState;
use crate::domain::validation::ValidationErrors;
use crate::telemetry::trace;

/// The request id header, accepted from clients and always echoed.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Marks a request whose path ended with `/` before it was normalised, so
/// links built for it (pagination) keep the client's form.
#[derive(Debug, Clone, Copy)]
pub struct TrailingSlash;

/// The id of the current request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client's id is kept when it is short and printable, so it cannot
/// forge log lines; anything else is replaced.
fn accepted_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_owned())
}

/// A fresh request id: UUID-shaped, a random half chosen once per process
/// and a counter, so ids stay unique without asking the kernel for
/// randomness on every request (`getrandom` showed in the profile).
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    uuid::Uuid::from_u64_pair(prefix, n).to_string()
}

/// Gives every request an id, runs it inside a span carrying that id (so
/// every log line has it), echoes it, and logs the outcome.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(accepted_request_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        trace_id = tracing::field::Empty,
        otel.kind = "server",
    );
    if let Some(trace_id) = trace::adopt_caller_trace(&span, req.headers()) {
        span.record("trace_id", trace_id);
    }
    let started = Instant::now();
    let mut response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response,
        Err(error) => {
            let status = error.as_response_error().status_code().as_u16();
            span.in_scope(|| tracing::warn!(status, "request failed in middleware"));
            return Err(error);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    Ok(response)
}

/// Answers 504 when a request runs past `http.request_timeout_ms`. The
/// request cannot be kept aside while routing runs (routing needs it
/// unshared), so the 504 travels as an error carrying a ready response.
pub async fn request_timeout(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<Data<AppState>>()
        .map_or(Duration::from_secs(30), |s| {
            Duration::from_millis(s.settings.http.request_timeout_ms)
        });
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            let mut response = ApiError::Timeout.error_response();
            if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            Err(InternalError::from_response(ApiError::Timeout, response).into())
        }
    }
}

/// Replaces the plain-text bodies of framework errors (unknown route, wrong
/// method, unreadable body) with problem+json, keeping the status and the
/// headers (`Allow` on a 405). JSON bodies pass untouched: they are the
/// API's own (e.g. `/readyz` listing which database is down).
pub async fn problem_fallback(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(req).await?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|ct| ct.to_str().ok())
        .and_then(|ct| ct.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(response.map_into_left_body());
    }
    let (code, detail) = match status.as_u16() {
        404 => ("not_found", "no resource at this address".to_owned()),
        405 => (
            "method_not_allowed",
            "this method is not allowed here".to_owned(),
        ),
        413 => (
            "payload_too_large",
            "the request body is too large".to_owned(),
        ),
        400 => (
            "bad_request",
            "the request could not be understood".to_owned(),
        ),
        s if s >= 500 => ("internal_error", "an unexpected error occurred".to_owned()),
        _ => (
            "http_error",
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        ),
    };
    let mut problem = problem_response(status, code, detail);
    for (name, value) in response.headers() {
        if name == header::ALLOW {
            problem
                .headers_mut()
                .insert(name.clone(), allow_with_head(value));
        } else if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(response.into_response(problem).map_into_right_body())
}

/// Every GET route answers HEAD too (see [`head_as_get`]), so say so.
fn allow_with_head(value: &HeaderValue) -> HeaderValue {
    let listed = value.to_str().unwrap_or_default();
    let has = |m: &str| listed.split(',').any(|x| x.trim().eq_ignore_ascii_case(m));
    if has("GET") && !has("HEAD") {
        HeaderValue::from_str(&format!("{listed}, HEAD")).unwrap_or_else(|_| value.clone())
    } else {
        value.clone()
    }
}

/// Serves HEAD from the GET route of the same path. The HTTP layer knows
/// the request was HEAD and sends the headers without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// While the instance drains, every response closes its connection: a
/// keep-alive client then sends its next request on a new connection (to
/// another replica once the listener closes) instead of on one the server
/// would cut at the end of the drain.
pub async fn close_when_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let draining = req
        .app_data::<Data<AppState>>()
        .is_some_and(|state| state.drain.is_draining());
    let mut res = next.call(req).await?;
    if draining {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

/// Refuses U+0000 in the path or in any query parameter before routing:
/// PostgreSQL cannot store it, and no handler should have to remember.
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path_has_nul = req.path().to_ascii_lowercase().contains("%00");
    let param_with_nul = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', "%00"));
    let field = match (path_has_nul, param_with_nul) {
        (true, _) => Some("path".to_owned()),
        (false, Some(param)) => Some(param),
        (false, None) => None,
    };
    if let Some(field) = field {
        let error = ApiError::InvalidQuery(ValidationErrors::single(
            &field,
            "null_character",
            "the NUL character (%00) is not accepted",
        ));
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The path with trailing slashes trimmed and runs of slashes merged (an
/// empty result is `/`), or `None` when it is already so. Routes are
/// declared without a trailing slash; this lets both forms reach them.
/// (actix's `NormalizePath` does the same with a regex on every request,
/// which showed in the profile.)
pub fn normalized_path(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() && !path.contains("//") {
        return None;
    }
    let mut out = String::with_capacity(trimmed.len().max(1));
    let mut previous_slash = false;
    for c in trimmed.chars() {
        if c == '/' && previous_slash {
            continue;
        }
        previous_slash = c == '/';
        out.push(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    (out != path).then_some(out)
}

/// Rewrites the request's path with [`normalized_path`] before routing.
pub async fn normalize_path(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.path().len() > 1 && req.path().ends_with('/') {
        req.extensions_mut().insert(TrailingSlash);
    }
    let uri = &req.head().uri;
    if let Some(path) = normalized_path(uri.path()) {
        let rebuilt = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(path_and_query) = PathAndQuery::from_maybe_shared(rebuilt) {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod path_tests {
    use super::normalized_path;

    #[test]
    fn trailing_slashes_go_and_runs_of_slashes_merge() {
        assert_eq!(
            normalized_path("/api/v1/products/").as_deref(),
            Some("/api/v1/products")
        );
        assert_eq!(
            normalized_path("/api//v1///x//").as_deref(),
            Some("/api/v1/x")
        );
        assert_eq!(normalized_path("/api/v1/products"), None);
        assert_eq!(normalized_path("/"), None);
        assert_eq!(normalized_path("///").as_deref(), Some("/"));
    }
}

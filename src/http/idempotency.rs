//! `Idempotency-Key` at the edge, for any actor that stores keys: claim the
//! key, run the request once, save its response (whatever it was), and
//! replay it for retries. Pure rules are in `domain::idempotency`; storage
//! is in the owning actor's database.

use std::future::Future;

use actix::dev::ToEnvelope;
use actix::{Actor, Handler};
use actix_web::body::to_bytes;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};
use uuid::Uuid;

use super::error::ApiError;
use crate::actors::idempotency::{ClaimIdempotencyKey, SaveIdempotentResponse};
use crate::actors::runtime::ActorClient;
use crate::domain::idempotency::{check_key, decide, fingerprint, Decision, SavedResponse};
use crate::domain::validation::ValidationErrors;
use crate::store::idempotency::Claim;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The key of a request, if it sent one; a malformed key is a 400.
pub fn request_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        ApiError::InvalidHeader(ValidationErrors::single(
            "Idempotency-Key",
            "invalid",
            "not printable ASCII",
        ))
    })?;
    check_key(key).map_err(|e| {
        ApiError::InvalidHeader(ValidationErrors::single(&e.field, e.code, e.message))
    })?;
    Ok(Some(key.to_owned()))
}

async fn capture(response: HttpResponse) -> Result<(SavedResponse, HttpResponse), ApiError> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = to_bytes(response.into_body())
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("response body could not be read")))?;
    let saved = SavedResponse {
        status: status.as_u16(),
        content_type,
        body: body.to_vec(),
    };
    let rebuilt = rebuild(&saved, false);
    Ok((saved, rebuilt))
}

fn rebuild(saved: &SavedResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    if let Ok(content_type) = HeaderValue::from_str(&saved.content_type) {
        builder.insert_header((header::CONTENT_TYPE, content_type));
    }
    if replayed {
        builder.insert_header(("idempotent-replayed", "true"));
    }
    builder.body(saved.body.clone())
}

/// Runs `run` at most once per `(user, key)`. Without a key it just runs.
/// The response is saved whatever it is (a 500 included); a retry with the
/// same request gets it back with `Idempotent-Replayed: true`; the same key
/// with another request is `422 idempotency_error`; a retry while the first
/// is still running is `409 idempotency_conflict` and saves nothing.
pub async fn run_once<A, F>(
    actor: &ActorClient<A>,
    req: &HttpRequest,
    user_id: Uuid,
    key: Option<String>,
    body: &serde_json::Value,
    run: F,
) -> Result<HttpResponse, ApiError>
where
    A: Actor + Handler<ClaimIdempotencyKey> + Handler<SaveIdempotentResponse>,
    A::Context: ToEnvelope<A, ClaimIdempotencyKey> + ToEnvelope<A, SaveIdempotentResponse>,
    F: Future<Output = Result<HttpResponse, ApiError>>,
{
    let Some(key) = key else {
        return run.await;
    };
    let fingerprint = fingerprint(req.method().as_str(), req.path(), body);
    let claim = actor
        .call(ClaimIdempotencyKey {
            user_id,
            key: key.clone(),
            fingerprint: fingerprint.clone(),
        })
        .await?;
    if let Claim::Existing(record) = claim {
        return match decide(&record, &fingerprint) {
            Decision::Replay(saved) => Ok(rebuild(&saved, true)),
            Decision::Mismatch => Err(ApiError::Unprocessable {
                code: "idempotency_error",
                detail: "this Idempotency-Key was used with a different request".into(),
            }),
            Decision::InFlight => Err(ApiError::Conflict {
                code: "idempotency_conflict",
                detail: "a request with this Idempotency-Key is still being processed; retry later"
                    .into(),
            }),
        };
    }
    let response = match run.await {
        Ok(response) => response,
        Err(e) => e.error_response(),
    };
    let (saved, response) = capture(response).await?;
    actor
        .call(SaveIdempotentResponse {
            user_id,
            key,
            response: saved,
        })
        .await?;
    Ok(response)
}

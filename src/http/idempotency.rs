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
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;
use crate::actors::idempotency::{
    ClaimIdempotencyKey, ReleaseIdempotencyKey, SaveIdempotentResponse,
};
use crate::actors::runtime::{ActorClient, Traced};
use crate::domain::idempotency::Claim;
use crate::domain::idempotency::{
    check_key, decide, fingerprint, Decision, KeyLease, SavedResponse,
};
use crate::domain::validation::ValidationErrors;

/// The `Idempotency-Key` header of the unsafe operations that create
/// something once.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the document only
pub struct IdempotencyKeyHeader {
    /// A client-chosen key (printable ASCII). A retry with the same key and
    /// body replays the first answer (with `Idempotent-Replayed: true`); the
    /// same key with another body is a 422 `idempotency_error`; a retry
    /// while the first is still running is a 409 `idempotency_conflict`.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[ -~]+$"
    )]
    idempotency_key: Option<String>,
}

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

/// How long a retry waits for a committed effect's answer to be saved
/// before recovering it: steps × step.
const RECOVER_WAIT_STEPS: usize = 5;
const RECOVER_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(40);

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
///
/// `run` gets the key's lease and must bind its effect to it in the
/// effect's own transaction (see `store::idempotency::bind_effect`). The
/// response is then saved and replayed for retries with
/// `Idempotent-Replayed: true`; a key whose effect committed but whose
/// response was never saved (a crash between the two) is answered by
/// `recover`, which renders the bound resource, never by running again.
/// The same key with another request is `422 idempotency_error`; a retry
/// while the first is still running is `409 idempotency_conflict`.
///
/// A 503 (shed before any effect) gives the key back so a retry runs at
/// once; a 504 is not an outcome (the work may still finish), so the key
/// stays in flight until the work binds its effect or the lock goes stale.
pub async fn run_once<A, F, Fut, R, RFut>(
    actor: &ActorClient<A>,
    req: &HttpRequest,
    user_id: Uuid,
    key: Option<String>,
    body: &serde_json::Value,
    run: F,
    recover: R,
) -> Result<HttpResponse, ApiError>
where
    A: Actor
        + Handler<Traced<ClaimIdempotencyKey>>
        + Handler<Traced<SaveIdempotentResponse>>
        + Handler<Traced<ReleaseIdempotencyKey>>,
    A::Context: ToEnvelope<A, Traced<ClaimIdempotencyKey>>
        + ToEnvelope<A, Traced<SaveIdempotentResponse>>
        + ToEnvelope<A, Traced<ReleaseIdempotencyKey>>,
    F: FnOnce(Option<KeyLease>) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ApiError>>,
    R: FnOnce(Uuid) -> RFut,
    RFut: Future<Output = Result<HttpResponse, ApiError>>,
{
    let Some(key) = key else {
        return run(None).await;
    };
    let fingerprint = fingerprint(req.method().as_str(), req.path(), body);
    let claim = actor
        .call(ClaimIdempotencyKey {
            user_id,
            key: key.clone(),
            fingerprint: fingerprint.clone(),
        })
        .await?;
    let lease = match claim {
        Claim::Claimed(lease) => lease,
        Claim::Existing(mut record) => {
            // An effect without a saved answer: usually its request is saving
            // the answer right now. Give it a moment, so that every retry
            // gets the very same answer; only a request that died, or gave
            // up with a 504, leaves its effect to be recovered.
            for _ in 0..RECOVER_WAIT_STEPS {
                if !matches!(decide(&record, &fingerprint), Decision::Recover(_)) {
                    break;
                }
                tokio::time::sleep(RECOVER_WAIT_STEP).await;
                let again = ClaimIdempotencyKey {
                    user_id,
                    key: key.clone(),
                    fingerprint: fingerprint.clone(),
                };
                // A key with an effect is never claimed again, so this only reads.
                if let Claim::Existing(newer) = actor.call(again).await? {
                    record = newer;
                }
            }
            return match decide(&record, &fingerprint) {
                Decision::Replay(saved) => Ok(rebuild(&saved, true)),
                Decision::Recover(resource) => {
                    let (saved, _) = capture(recover(resource).await?).await?;
                    save(actor, user_id, key, None, &saved).await;
                    Ok(rebuild(&saved, true))
                }
                Decision::Mismatch => Err(ApiError::Unprocessable {
                    code: "idempotency_error",
                    detail: "this Idempotency-Key was used with a different request".into(),
                }),
                Decision::InFlight => Err(ApiError::idempotency_in_flight()),
            };
        }
    };
    let response = match run(Some(lease.clone())).await {
        Ok(response) => response,
        Err(e) => e.error_response(),
    };
    match response.status() {
        StatusCode::SERVICE_UNAVAILABLE => {
            if let Err(e) = actor.call(ReleaseIdempotencyKey(lease)).await {
                tracing::warn!(error = %ApiError::from(e), "could not give back an idempotency key; it frees itself when its lock goes stale");
            }
            Ok(response)
        }
        StatusCode::GATEWAY_TIMEOUT => Ok(response),
        _ => {
            let (saved, response) = capture(response).await?;
            save(actor, user_id, key, Some(lease.token), &saved).await;
            Ok(response)
        }
    }
}

/// Saves a response under its key. A failure is logged, not answered: the
/// effect (if any) is bound to the key already, so a retry recovers it.
async fn save<A>(
    actor: &ActorClient<A>,
    user_id: Uuid,
    key: String,
    lease_token: Option<Uuid>,
    saved: &SavedResponse,
) where
    A: Actor + Handler<Traced<SaveIdempotentResponse>>,
    A::Context: ToEnvelope<A, Traced<SaveIdempotentResponse>>,
{
    let message = SaveIdempotentResponse {
        user_id,
        key,
        lease_token,
        response: saved.clone(),
    };
    if let Err(e) = actor.call(message).await {
        tracing::warn!(error = %ApiError::from(e), "could not save an idempotent response; a retry will recover it");
    }
}

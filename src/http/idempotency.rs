//! `Idempotency-Key` at the edge: the key and the body arrive through one
//! extractor ([`IdempotentJson`], or [`RequestKey`] for a body-less write),
//! and a keyed write goes to its owner as one [`Keyed`] message, which
//! claims the key, runs the write once, saves its answer and replays it
//! for retries (`actors::idempotency`). The edge's part is how an outcome
//! reads on the wire: the [`Renderer`] it hands the owner.

use actix::dev::ToEnvelope;
use actix::{Actor, Handler, Message};
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{from_value, ValidJson};
use crate::actors::idempotency::{Keyed, Renderer};
use crate::actors::runtime::{ActorClient, Traced};
use crate::domain::idempotency::{
    fingerprint, IdempotencyKey, KeyedOutcome, KeyedRequest, SavedResponse,
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

/// A write's `Idempotency-Key`, if it sent one (a malformed key is a 400),
/// with what a retry must repeat to be the same request.
#[derive(Debug, Clone)]
pub struct RequestKey {
    key: Option<IdempotencyKey>,
    method: String,
    path: String,
}

impl RequestKey {
    /// Reads the header of `req`.
    pub fn from_headers(req: &HttpRequest) -> Result<Self, ApiError> {
        let key = match req.headers().get(IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => {
                let raw = value.to_str().map_err(|_| {
                    ApiError::InvalidHeader(ValidationErrors::single(
                        "Idempotency-Key",
                        "invalid",
                        "not printable ASCII",
                    ))
                })?;
                let key = IdempotencyKey::parse(raw).map_err(|e| {
                    ApiError::InvalidHeader(ValidationErrors::single(&e.field, e.code, e.message))
                })?;
                Some(key)
            }
        };
        Ok(Self {
            key,
            method: req.method().as_str().to_owned(),
            path: req.path().to_owned(),
        })
    }

    /// The keyed request of `user_id` whose meaning is `body`, or `None`
    /// without a key.
    pub fn for_user(self, user_id: Uuid, body: &serde_json::Value) -> Option<KeyedRequest> {
        let key = self.key?;
        Some(KeyedRequest {
            user_id,
            key,
            fingerprint: fingerprint(&self.method, &self.path, body),
        })
    }
}

impl FromRequest for RequestKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::from_headers(req))
    }
}

/// A JSON body of type `T` for a write that takes an `Idempotency-Key`:
/// the body is checked as [`ValidJson`] does, then the key, then the
/// body's fields, so a request refused on any of them saves nothing
/// under its key.
#[derive(Debug)]
pub struct IdempotentJson<T> {
    pub body: T,
    /// The body as sent, which the key's fingerprint covers.
    pub raw: serde_json::Value,
    pub key: RequestKey,
}

impl<T: DeserializeOwned + 'static> FromRequest for IdempotentJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = ValidJson::<serde_json::Value>::from_request(req, payload);
        let key = RequestKey::from_headers(req);
        Box::pin(async move {
            let ValidJson(raw) = json.await?;
            let key = key?;
            let body = from_value(raw.clone())?;
            Ok(Self { body, raw, key })
        })
    }
}

/// A success answered with `status` and `reply` as JSON.
fn json_answer<V: Serialize>(status: StatusCode, reply: &V) -> SavedResponse {
    match serde_json::to_vec(reply) {
        Ok(body) => SavedResponse {
            status: status.as_u16(),
            content_type: "application/json".to_owned(),
            body,
            retry_after_secs: None,
        },
        Err(e) => {
            ApiError::Internal(anyhow::Error::new(e).context("reply did not serialize")).answer()
        }
    }
}

fn created<V: Serialize>(reply: &V) -> SavedResponse {
    json_answer(StatusCode::CREATED, reply)
}

fn accepted<V: Serialize>(reply: &V) -> SavedResponse {
    json_answer(StatusCode::ACCEPTED, reply)
}

fn problem<E>(e: E) -> SavedResponse
where
    ApiError: From<E>,
{
    ApiError::from(e).answer()
}

/// Answers a success with 201 and its JSON; a failure as a problem.
pub fn answer_created<V: Serialize, E>() -> Renderer<V, E>
where
    ApiError: From<E>,
{
    Renderer {
        ok: created::<V>,
        err: problem::<E>,
    }
}

/// Answers a success with 202 and its JSON; a failure as a problem.
pub fn answer_accepted<V: Serialize, E>() -> Renderer<V, E>
where
    ApiError: From<E>,
{
    Renderer {
        ok: accepted::<V>,
        err: problem::<E>,
    }
}

fn respond(saved: &SavedResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    if let Ok(content_type) = HeaderValue::from_str(&saved.content_type) {
        builder.insert_header((header::CONTENT_TYPE, content_type));
    }
    if replayed {
        builder.insert_header(("idempotent-replayed", "true"));
    }
    if let Some(secs) = saved.retry_after_secs {
        builder.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
    }
    builder.body(saved.body.clone())
}

/// Sends a write to its owner `actor`: as `message` itself without a key,
/// or with one as a single [`Keyed`] message that runs it at most once
/// and answers the first outcome to every retry (with
/// `Idempotent-Replayed: true`). The same key with another request is a
/// 422 `idempotency_error`; a retry while the first runs, a 409
/// `idempotency_conflict`.
pub async fn send_once<A, M, V, E>(
    actor: &ActorClient<A>,
    request: Option<KeyedRequest>,
    message: M,
    render: Renderer<V, E>,
) -> Result<HttpResponse, ApiError>
where
    A: Actor + Handler<Traced<M>> + Handler<Traced<Keyed<M, V, E>>>,
    A::Context: ToEnvelope<A, Traced<M>> + ToEnvelope<A, Traced<Keyed<M, V, E>>>,
    M: Message<Result = Result<V, E>> + Send + 'static,
    V: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    send_once_then(actor, request, message, render, |saved| saved).await
}

/// [`send_once`], with `finish` applied to the answer on its way out,
/// first or replayed: for what the reply must carry but the saved answer
/// must never hold (a guest order's token is added here, derived again
/// for each replay).
pub async fn send_once_then<A, M, V, E>(
    actor: &ActorClient<A>,
    request: Option<KeyedRequest>,
    message: M,
    render: Renderer<V, E>,
    finish: impl FnOnce(SavedResponse) -> SavedResponse,
) -> Result<HttpResponse, ApiError>
where
    A: Actor + Handler<Traced<M>> + Handler<Traced<Keyed<M, V, E>>>,
    A::Context: ToEnvelope<A, Traced<M>> + ToEnvelope<A, Traced<Keyed<M, V, E>>>,
    M: Message<Result = Result<V, E>> + Send + 'static,
    V: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    let Some(request) = request else {
        let reply = actor.call(message).await?;
        return Ok(respond(&finish((render.ok)(&reply)), false));
    };
    let keyed = Keyed {
        request,
        message,
        render,
    };
    match actor.call(keyed).await? {
        KeyedOutcome::Answered { response, replayed } => Ok(respond(&finish(response), replayed)),
        KeyedOutcome::Mismatch => Err(ApiError::Unprocessable {
            code: "idempotency_error",
            detail: "this Idempotency-Key was used with a different request".into(),
        }),
        KeyedOutcome::InFlight => Err(ApiError::idempotency_in_flight()),
    }
}

//! Messages of the idempotency-key mechanism, answered by every actor whose
//! database holds an `idempotency_keys` table (orders now, payments next).

use std::time::Duration;

use actix::Message;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::idempotency::Claim;
use crate::domain::idempotency::{KeyLease, SavedResponse};
use crate::store::idempotency;

use super::runtime::RuntimeError;

/// Claim `key` for `user_id` with the request's fingerprint.
#[derive(Debug, Message)]
#[rtype(result = "Result<Claim, RuntimeError>")]
pub struct ClaimIdempotencyKey {
    pub user_id: Uuid,
    pub key: String,
    pub fingerprint: String,
}

/// Save the response of the request holding the lease with `lease_token`;
/// `None` saves a response rendered from the key's bound resource.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct SaveIdempotentResponse {
    pub user_id: Uuid,
    pub key: String,
    pub lease_token: Option<Uuid>,
    pub response: SavedResponse,
}

/// Give a claimed key back unanswered: the request was shed before it had
/// an effect, and a retry may run at once.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct ReleaseIdempotencyKey(pub KeyLease);

/// The work behind [`ClaimIdempotencyKey`] for the actor owning `pool`.
pub async fn claim_key(
    pool: &PgPool,
    lock: Duration,
    msg: ClaimIdempotencyKey,
) -> Result<Claim, RuntimeError> {
    Ok(idempotency::claim(pool, msg.user_id, &msg.key, &msg.fingerprint, lock).await?)
}

/// The work behind [`SaveIdempotentResponse`] for the actor owning `pool`.
pub async fn save_response(pool: &PgPool, msg: SaveIdempotentResponse) -> Result<(), RuntimeError> {
    Ok(idempotency::complete(pool, msg.user_id, &msg.key, msg.lease_token, &msg.response).await?)
}

/// The work behind [`ReleaseIdempotencyKey`] for the actor owning `pool`.
pub async fn release_key(pool: &PgPool, msg: ReleaseIdempotencyKey) -> Result<(), RuntimeError> {
    Ok(idempotency::release(pool, &msg.0).await?)
}

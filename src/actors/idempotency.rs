//! Messages of the idempotency-key mechanism, answered by every actor whose
//! database holds an `idempotency_keys` table (orders now, payments next).

use actix::Message;
use uuid::Uuid;

use crate::domain::idempotency::SavedResponse;
use crate::store::idempotency::Claim;

use super::runtime::RuntimeError;

/// Claim `key` for `user_id` with the request's fingerprint.
#[derive(Debug, Message)]
#[rtype(result = "Result<Claim, RuntimeError>")]
pub struct ClaimIdempotencyKey {
    pub user_id: Uuid,
    pub key: String,
    pub fingerprint: String,
}

/// Save the response of the request that claimed `key`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct SaveIdempotentResponse {
    pub user_id: Uuid,
    pub key: String,
    pub response: SavedResponse,
}

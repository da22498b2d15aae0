//! Idempotent writes, run by the actor that owns the write's database:
//! one message ([`Keyed`]) claims the key, runs the effect, and saves the
//! answer, so the edge makes one round trip for a keyed write as for any
//! other. The pure rules are in `domain::idempotency`; the SQL in
//! `store::idempotency`; how an outcome reads on the wire is the edge's
//! (it hands the owner a [`Renderer`]).
//!
//! Keys move through: claimed (a lease with a fencing token) → effect and
//! answer committed together (or the answer saved alone, for an outcome
//! that wrote nothing) → replayed. The three small messages below let an
//! actor that orchestrates a write it does not own (checkout, in carts)
//! claim and answer keys stored by the owner (orders).

use std::future::Future;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Handler, Message};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::runtime::{ActorClient, CallError, RuntimeError, Traced};
use crate::domain::idempotency::{
    decide, Claim, Decision, KeyLease, KeyedOutcome, KeyedRequest, SavedResponse,
};
use crate::store::idempotency;

/// How a write's outcome reads on the wire, chosen by the edge: the
/// owner renders its own answer, so it can commit it with the effect.
pub struct Renderer<V, E> {
    /// The answer for a success.
    pub ok: fn(&V) -> SavedResponse,
    /// The answer for a refusal or failure.
    pub err: fn(E) -> SavedResponse,
}

impl<V, E> Clone for Renderer<V, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V, E> Copy for Renderer<V, E> {}

impl<V, E> std::fmt::Debug for Renderer<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

/// `message`, to be run at most once for `request`'s key by the actor
/// owning `message`'s effect.
#[derive(Debug)]
pub struct Keyed<M, V, E> {
    pub request: KeyedRequest,
    pub message: M,
    pub render: Renderer<V, E>,
}

impl<M, V: 'static, E: 'static> Message for Keyed<M, V, E> {
    type Result = Result<KeyedOutcome, E>;
}

impl<M, V, E> Keyed<M, V, E> {
    /// Runs the message at most once per key, in its owner, with the keys
    /// in `keys`; `effect` gets the message and the claimed key to bind,
    /// `recover` renders a bound resource.
    ///
    /// A retry of a finished request replays its answer; the same key with
    /// another request is [`KeyedOutcome::Mismatch`]; a retry while the first
    /// is still running is [`KeyedOutcome::InFlight`]. A key whose effect
    /// committed but whose answer was never saved (a crash between the two)
    /// is answered by `recover`, which reads the bound resource, never by
    /// running again. A 503 (shed before any effect) gives the key back so a
    /// retry runs at once; a 504 is not an outcome (the work may still
    /// finish), so the key stays in flight until the work binds its effect or
    /// the lock goes stale. An error from the store itself answers nothing and
    /// saves nothing.
    pub(crate) async fn run<S, F, Fut, R, RFut>(
        self,
        keys: &S,
        answer: SuccessAnswer,
        effect: F,
        recover: R,
    ) -> Result<KeyedOutcome, E>
    where
        S: KeyStore,
        S::Error: std::fmt::Display,
        E: From<S::Error>,
        F: FnOnce(M, KeyBinding<V>) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        R: FnOnce(Uuid) -> RFut,
        RFut: Future<Output = Result<V, E>>,
    {
        let Keyed {
            request,
            message,
            render,
        } = self;
        let lease = match keys.claim(&request).await? {
            Claim::Claimed(lease) => lease,
            Claim::Existing(mut record) => {
                // An effect without a saved answer: usually its request is saving
                // the answer right now. Give it a moment, so that every retry
                // gets the very same answer; only a request that died leaves
                // its effect to be recovered.
                for _ in 0..RECOVER_WAIT_STEPS {
                    if !matches!(decide(&record, &request.fingerprint), Decision::Recover(_)) {
                        break;
                    }
                    tokio::time::sleep(RECOVER_WAIT_STEP).await;
                    // A key with an effect is never claimed again, so this only reads.
                    if let Claim::Existing(newer) = keys.claim(&request).await? {
                        record = newer;
                    }
                }
                return Ok(match decide(&record, &request.fingerprint) {
                    Decision::Replay(response) => KeyedOutcome::Answered {
                        response,
                        replayed: true,
                    },
                    Decision::Recover(resource) => {
                        let response = (render.ok)(&recover(resource).await?);
                        save(keys, &request, None, &response).await;
                        KeyedOutcome::Answered {
                            response,
                            replayed: true,
                        }
                    }
                    Decision::Mismatch => KeyedOutcome::Mismatch,
                    Decision::InFlight => KeyedOutcome::InFlight,
                });
            }
        };
        let binding = KeyBinding {
            lease: lease.clone(),
            render: render.ok,
            answer,
        };
        let (response, committed) = match effect(message, binding).await {
            Ok(reply) => (
                (render.ok)(&reply),
                answer == SuccessAnswer::CommittedWithEffect,
            ),
            Err(e) => ((render.err)(e), false),
        };
        match response.status {
            503 => {
                if let Err(e) = keys.release(&lease).await {
                    tracing::warn!(error = %e, "could not give back an idempotency key; it frees itself when its lock goes stale");
                }
            }
            504 => {}
            _ if committed => {}
            _ => save(keys, &request, Some(lease.token), &response).await,
        }
        Ok(KeyedOutcome::Answered {
            response,
            replayed: false,
        })
    }
}

/// A claimed key, handed to the effect: the effect binds what it creates
/// to it in its own transaction (see [`KeyBinding::bind`]).
pub struct KeyBinding<V> {
    pub lease: KeyLease,
    render: fn(&V) -> SavedResponse,
    answer: SuccessAnswer,
}

impl<V> Clone for KeyBinding<V> {
    fn clone(&self) -> Self {
        Self {
            lease: self.lease.clone(),
            render: self.render,
            answer: self.answer,
        }
    }
}

impl<V> std::fmt::Debug for KeyBinding<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBinding")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<V> KeyBinding<V> {
    /// Binds `resource_id` to the key inside the effect's transaction,
    /// with the answer `reply` renders to when the effect's answer is
    /// known before it commits and the write it belongs to ends there (a
    /// checkout's order is bound without it: the checkout goes on to
    /// empty the cart). `false` when the lease was lost: the caller must
    /// roll back.
    pub async fn bind(
        &self,
        conn: &mut PgConnection,
        resource_id: Uuid,
        reply: Option<&V>,
    ) -> Result<bool, sqlx::Error> {
        let response = reply
            .filter(|_| self.answer == SuccessAnswer::CommittedWithEffect)
            .map(self.render);
        idempotency::bind_effect(conn, &self.lease, resource_id, response.as_ref()).await
    }
}

/// Where a domain's keys are kept: its own database, or the actor owning it.
pub(crate) trait KeyStore {
    /// What a failed store call is.
    type Error;
    /// Claims the request's key (or reads who holds it).
    async fn claim(&self, request: &KeyedRequest) -> Result<Claim, Self::Error>;
    /// Saves an answer (`lease_token: None` for one recovered from the
    /// key's bound resource).
    async fn save(
        &self,
        request: &KeyedRequest,
        lease_token: Option<Uuid>,
        response: &SavedResponse,
    ) -> Result<(), Self::Error>;
    /// Gives a claimed key back unanswered.
    async fn release(&self, lease: &KeyLease) -> Result<(), Self::Error>;
}

/// The keys in an actor's own database.
pub struct PgKeys<'a> {
    pub pool: &'a PgPool,
    /// How long a claim lasts before a retry may take it over.
    pub stale_after: Duration,
}

impl KeyStore for PgKeys<'_> {
    type Error = sqlx::Error;

    async fn claim(&self, request: &KeyedRequest) -> Result<Claim, sqlx::Error> {
        idempotency::claim(self.pool, request, self.stale_after).await
    }

    async fn save(
        &self,
        request: &KeyedRequest,
        lease_token: Option<Uuid>,
        response: &SavedResponse,
    ) -> Result<(), sqlx::Error> {
        idempotency::complete(
            self.pool,
            request.user_id,
            &request.key,
            lease_token,
            response,
        )
        .await
    }

    async fn release(&self, lease: &KeyLease) -> Result<(), sqlx::Error> {
        idempotency::release(self.pool, lease).await
    }
}

/// Claim `request`'s key (or read who holds it), in the owner's database.
#[derive(Debug, Message)]
#[rtype(result = "Result<Claim, RuntimeError>")]
pub struct ClaimIdempotencyKey(pub KeyedRequest);

/// Save the answer of the request holding the lease with `lease_token`;
/// `None` saves an answer rendered from the key's bound resource.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct SaveIdempotentResponse {
    pub request: KeyedRequest,
    pub lease_token: Option<Uuid>,
    pub response: SavedResponse,
}

/// Give a claimed key back unanswered: the request was shed before it had
/// an effect, and a retry may run at once.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct ReleaseIdempotencyKey(pub KeyLease);

/// The keys held by another actor, reached through the three messages.
impl<A> KeyStore for ActorClient<A>
where
    A: Actor
        + Handler<Traced<ClaimIdempotencyKey>>
        + Handler<Traced<SaveIdempotentResponse>>
        + Handler<Traced<ReleaseIdempotencyKey>>,
    A::Context: ToEnvelope<A, Traced<ClaimIdempotencyKey>>
        + ToEnvelope<A, Traced<SaveIdempotentResponse>>
        + ToEnvelope<A, Traced<ReleaseIdempotencyKey>>,
{
    type Error = CallError<RuntimeError>;

    async fn claim(&self, request: &KeyedRequest) -> Result<Claim, Self::Error> {
        self.call(ClaimIdempotencyKey(request.clone())).await
    }

    async fn save(
        &self,
        request: &KeyedRequest,
        lease_token: Option<Uuid>,
        response: &SavedResponse,
    ) -> Result<(), Self::Error> {
        let message = SaveIdempotentResponse {
            request: request.clone(),
            lease_token,
            response: response.clone(),
        };
        self.call(message).await
    }

    async fn release(&self, lease: &KeyLease) -> Result<(), Self::Error> {
        self.call(ReleaseIdempotencyKey(lease.clone())).await
    }
}

/// How long a retry waits for a committed effect's answer to be saved
/// before recovering it: steps × step.
const RECOVER_WAIT_STEPS: usize = 5;
const RECOVER_WAIT_STEP: Duration = Duration::from_millis(40);

/// What an effect promises about its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SuccessAnswer {
    /// A success committed its answer with its effect (through
    /// [`KeyBinding::bind`] with the reply): nothing is left to save.
    CommittedWithEffect,
    /// The answer is final only after the effect commits (a refund waits
    /// for the order's grant; a checkout empties the cart after its order
    /// commits): it is saved afterwards, and a retry in between recovers
    /// it from the bound resource.
    SavedAfter,
}

/// Saves an answer under its key. A failure is logged, not answered: the
/// effect (if any) is bound to the key already, so a retry recovers it.
async fn save<S>(keys: &S, request: &KeyedRequest, token: Option<Uuid>, response: &SavedResponse)
where
    S: KeyStore,
    S::Error: std::fmt::Display,
{
    if let Err(e) = keys.save(request, token, response).await {
        tracing::warn!(error = %e, "could not save an idempotent response; a retry will recover it");
    }
}

/// The work behind [`ClaimIdempotencyKey`] for the actor owning `pool`.
pub async fn claim_key(
    pool: &PgPool,
    stale_after: Duration,
    msg: ClaimIdempotencyKey,
) -> Result<Claim, RuntimeError> {
    Ok(idempotency::claim(pool, &msg.0, stale_after).await?)
}

/// The work behind [`SaveIdempotentResponse`] for the actor owning `pool`.
pub async fn save_response(pool: &PgPool, msg: SaveIdempotentResponse) -> Result<(), RuntimeError> {
    let SaveIdempotentResponse {
        request,
        lease_token,
        response,
    } = msg;
    Ok(idempotency::complete(pool, request.user_id, &request.key, lease_token, &response).await?)
}

/// The work behind [`ReleaseIdempotencyKey`] for the actor owning `pool`.
pub async fn release_key(pool: &PgPool, msg: ReleaseIdempotencyKey) -> Result<(), RuntimeError> {
    Ok(idempotency::release(pool, &msg.0).await?)
}

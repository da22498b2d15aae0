//! The payment pool, in place of Celery: `PaymentWorker` actors, each
//! supervised, claiming jobs from the durable queue in the payments
//! database (`FOR UPDATE SKIP LOCKED` under a lease), calling the provider,
//! and writing the outcome only while they still hold the lease.
//!
//! Workers are woken at once by new jobs (a `Notify` from this instance and
//! PostgreSQL `LISTEN payment_jobs` for every instance) and poll as a
//! fallback. A worker that panics is restarted by its supervisor; its job
//! is claimed again when the lease runs out.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::fut::{wrap_future, ActorFutureExt as _};
use actix::{Actor, ActorContext as _, AsyncContext as _, Context, Supervised};
use anyhow::Context as _;
use futures_util::FutureExt as _;
use rand::Rng as _;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::outcomes;
use super::provider::{PaymentProvider, ProviderCall, ProviderReply, TransientError};
use crate::domain::payments::queue::JobKind;
use crate::domain::payments::refund::RefundStatus;
use crate::domain::payments::retry::RetryPolicy;
use crate::domain::payments::status::PaymentEvent;
use crate::store::payments::{self as store, ClaimedJob, StatusChange};
use crate::store::refunds;

/// Counters of the pool, shared by its workers and read by the report.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub busy: AtomicUsize,
    pub attempts: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub refunded: AtomicU64,
    pub leases_lost: AtomicU64,
    pub restarts: AtomicU64,
}

/// What every worker of the pool shares.
pub struct PoolShared {
    pub pool: PgPool,
    pub provider: Arc<dyn PaymentProvider>,
    pub policy: RetryPolicy,
    pub lease: Duration,
    pub provider_timeout: Duration,
    pub poll_interval: Duration,
    pub webhook_wait: Duration,
    /// Wakes one idle worker per new job.
    pub jobs: Notify,
    /// Wakes the outbox relay after an outcome.
    pub outcomes: Arc<Notify>,
    pub stats: PoolStats,
    pub size: usize,
    /// Jobs a worker claims at once and runs side by side.
    pub claim_batch: usize,
}

/// One worker of the pool.
pub struct PaymentWorker {
    shared: Arc<PoolShared>,
}

impl PaymentWorker {
    /// A worker of the pool `shared`.
    pub fn new(shared: Arc<PoolShared>) -> Self {
        Self { shared }
    }
}

impl Actor for PaymentWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let shared = Arc::clone(&self.shared);
        ctx.spawn(wrap_future::<_, Self>(run(shared)).map(|(), _, ctx| {
            // The loop only ends when a job panicked: let the supervisor
            // restart this worker.
            ctx.stop();
        }));
    }
}

impl Supervised for PaymentWorker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.shared.stats.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("payment worker restarted by its supervisor");
    }
}

/// Claims and runs jobs until one panics.
async fn run(shared: Arc<PoolShared>) {
    loop {
        match AssertUnwindSafe(work_once(&shared)).catch_unwind().await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                // Idle: wait to be woken, or poll.
                let _ = tokio::time::timeout(shared.poll_interval, shared.jobs.notified()).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "payment job failed; it will be retried");
                tokio::time::sleep(shared.poll_interval).await;
            }
            Err(_) => {
                tracing::error!("payment job panicked; its lease will return it to the queue");
                return;
            }
        }
    }
}

/// Marks a worker busy for as long as it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Claims up to `claim_batch` due jobs, calls the provider for them side
/// by side, and writes their outcomes in one transaction (one commit for
/// the batch); `false` when the queue had none.
///
/// If that transaction fails, no outcome of the batch is written and each
/// job returns when its lease runs out; asking the provider again is safe,
/// as every call carries its idempotency key.
async fn work_once(s: &PoolShared) -> anyhow::Result<bool> {
    let jobs = store::claim_jobs(
        &s.pool,
        s.lease.as_secs_f64(),
        i64::try_from(s.claim_batch).unwrap_or(1),
    )
    .await?;
    if jobs.is_empty() {
        return Ok(false);
    }
    let replies = futures_util::future::join_all(jobs.iter().map(|job| call(s, job))).await;
    let mut tx = s.pool.begin().await?;
    for (job, reply) in jobs.iter().zip(replies) {
        finish(s, &mut tx, job, reply?).await?;
    }
    tx.commit().await?;
    s.outcomes.notify_one();
    Ok(true)
}

/// Calls the provider for one claimed job.
async fn call(
    s: &PoolShared,
    job: &ClaimedJob,
) -> anyhow::Result<Result<ProviderReply, TransientError>> {
    let _busy = Busy::new(&s.stats.busy);
    s.stats.attempts.fetch_add(1, Ordering::Relaxed);
    let refund = job.kind == JobKind::Refund;
    let call = ProviderCall {
        idempotency_key: if refund {
            job.refund_id.context("a refund job without a refund id")?
        } else {
            job.payment_id
        },
        payment_id: job.payment_id,
        amount: job.amount,
        currency: job.currency.clone(),
        card_token: job.card_token.clone(),
        partial: job.partial,
    };
    let reply = if refund {
        s.provider.refund(call)
    } else {
        s.provider.charge(call)
    };
    Ok(tokio::time::timeout(s.provider_timeout, reply)
        .await
        .unwrap_or_else(|_| {
            Err(TransientError {
                code: "timeout".into(),
                message: "the provider did not answer in time".into(),
            })
        }))
}

/// Writes the outcome of a job in the batch's transaction, only if this
/// worker still holds the job's lease (the fence); otherwise writes
/// nothing for it.
async fn finish(
    s: &PoolShared,
    tx: &mut sqlx::PgConnection,
    job: &ClaimedJob,
    reply: Result<ProviderReply, TransientError>,
) -> anyhow::Result<()> {
    let payment_id = job.payment_id;
    let refund = job.kind == JobKind::Refund;
    let attempt_number = u32::try_from(job.attempts).unwrap_or(u32::MAX);
    let retry = s.policy.retries_after(attempt_number);
    let attempt = json!({"attempt": job.attempts, "kind": job.kind});
    let held = match &reply {
        Ok(ProviderReply::Pending) => {
            store::retry_job(
                &mut *tx,
                job.id,
                job.lease_token,
                s.webhook_wait.as_secs_f64(),
            )
            .await?
        }
        // A partial refund is never given up on a transient error: the
        // provider may have made it, and only asking again under its id
        // can tell. It stays pending (and counting) until it answers.
        Err(_) if retry || job.partial => {
            let unit: f64 = rand::thread_rng().gen();
            let delay = s.policy.backoff(attempt_number, unit);
            store::retry_job(&mut *tx, job.id, job.lease_token, delay.as_secs_f64()).await?
        }
        _ => store::finish_job(&mut *tx, job.id, job.lease_token).await?,
    };
    if !held {
        // Another worker owns the job now; its result stands (the fence
        // wrote nothing).
        s.stats.leases_lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(payment = %payment_id, "lost a payment job's lease; dropping this result");
        return Ok(());
    }
    if job.partial {
        return settle_partial(s, tx, job, reply, retry, attempt).await;
    }
    let attempts = (!refund).then_some(job.attempts);
    match reply {
        Ok(ProviderReply::Pending) => {
            if let Some(n) = attempts {
                store::set_attempts(&mut *tx, payment_id, n).await?;
            }
            store::insert_event(&mut *tx, payment_id, "awaiting_webhook", attempt).await?;
        }
        Ok(ProviderReply::Succeeded) => {
            let event = if refund {
                PaymentEvent::RefundSucceeded
            } else {
                PaymentEvent::ChargeSucceeded
            };
            let change = StatusChange {
                attempts,
                ..StatusChange::default()
            };
            outcomes::apply(&mut *tx, payment_id, event, &change, attempt).await?;
            let counter = if refund {
                &s.stats.refunded
            } else {
                &s.stats.succeeded
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(ProviderReply::Declined { code, message }) => {
            fail(
                &mut *tx, payment_id, refund, attempts, &code, &message, attempt,
            )
            .await?;
            s.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) if retry => {
            if let Some(n) = attempts {
                store::set_attempts(&mut *tx, payment_id, n).await?;
            }
            let detail = json!({"attempt": job.attempts, "kind": job.kind, "code": e.code});
            store::insert_event(&mut *tx, payment_id, "attempt_failed", detail).await?;
            s.stats.retried.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            fail(
                &mut *tx, payment_id, refund, attempts, &e.code, &e.message, attempt,
            )
            .await?;
            s.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Writes a partial refund's outcome: settled as succeeded or failed, or
/// a note that the attempt failed and will be retried. The lease is held.
async fn settle_partial(
    s: &PoolShared,
    tx: &mut sqlx::PgConnection,
    job: &ClaimedJob,
    reply: Result<ProviderReply, TransientError>,
    retry: bool,
    attempt: serde_json::Value,
) -> anyhow::Result<()> {
    let refund_id = job
        .refund_id
        .context("a partial refund job without a refund")?;
    let (to, code) = match reply {
        Ok(ProviderReply::Pending) => {
            store::insert_event(tx, job.payment_id, "awaiting_webhook", attempt).await?;
            return Ok(());
        }
        Ok(ProviderReply::Succeeded) => (RefundStatus::Succeeded, None),
        Ok(ProviderReply::Declined { code, .. }) => (RefundStatus::Failed, Some(code)),
        Err(e) => {
            let detail = json!({"attempt": job.attempts, "kind": job.kind, "refund_id": refund_id, "code": e.code, "retries_left": retry});
            store::insert_event(tx, job.payment_id, "attempt_failed", detail).await?;
            s.stats.retried.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    };
    let mut detail = attempt;
    if let Some(code) = &code {
        detail["code"] = json!(code);
    }
    refunds::settle(tx, refund_id, to, code.as_deref(), detail).await?;
    let counter = if to == RefundStatus::Succeeded {
        &s.stats.refunded
    } else {
        &s.stats.failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A final failure: the charge failed, or the refund was refused (the
/// charge then stands).
async fn fail(
    tx: &mut sqlx::PgConnection,
    payment_id: uuid::Uuid,
    refund: bool,
    attempts: Option<i32>,
    code: &str,
    message: &str,
    mut detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    detail["code"] = json!(code);
    let (event, change) = if refund {
        (
            PaymentEvent::RefundFailed,
            StatusChange {
                refund_failure_code: Some(code),
                ..StatusChange::default()
            },
        )
    } else {
        (
            PaymentEvent::ChargeFailed,
            StatusChange {
                attempts,
                failure: Some((code, message)),
                ..StatusChange::default()
            },
        )
    };
    outcomes::apply(tx, payment_id, event, &change, detail).await?;
    Ok(())
}

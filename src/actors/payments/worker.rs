//! The payment pool, in place of Celery: `PaymentWorker` actors, each
//! supervised, claiming jobs from the durable queue in the payments
//! database (`FOR UPDATE SKIP LOCKED` under a lease), calling the provider,
//! and writing the outcome only while they still hold the lease.
//!
//! Workers are woken at once by new jobs (a `Notify` from this instance and
//! PostgreSQL `LISTEN payment_jobs` for every instance) and poll as a
//! fallback. A worker that panics is restarted by its supervisor; its job
//! is claimed again when the lease runs out.

use std::collections::HashMap;
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
use crate::store::payments::{self as store, ClaimedJob, JobEnd, PaymentRow, StatusChange};
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
/// by side, and writes their outcomes in one transaction (one commit and
/// a fixed number of statements for the batch); `false` when the queue
/// had none.
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
    let replies = futures_util::future::join_all(jobs.iter().map(|job| call(s, job)))
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tx = s.pool.begin().await?;
    finish(s, &mut tx, &jobs, replies).await?;
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

/// A job's reply from the provider, or the transient error in its place.
type Reply = Result<ProviderReply, TransientError>;

/// Writes the batch's outcomes in its transaction, only for the jobs whose
/// lease this worker still holds (the fence); a job another worker owns
/// now keeps that worker's result.
///
/// The statements are per batch, not per job: the fence, the lock of the
/// batch's payments, their new rows, and the records that go with them.
/// Partial refunds, which settle a refund row of their own, are written
/// one by one, first.
async fn finish(
    s: &PoolShared,
    tx: &mut sqlx::PgConnection,
    jobs: &[ClaimedJob],
    replies: Vec<Reply>,
) -> anyhow::Result<()> {
    let ends: Vec<(i64, uuid::Uuid, JobEnd)> = jobs
        .iter()
        .zip(&replies)
        .map(|(job, reply)| (job.id, job.lease_token, end_of(s, job, reply)))
        .collect();
    let held = store::end_jobs(&mut *tx, &ends).await?;
    let mut mine = Vec::with_capacity(jobs.len());
    for (job, reply) in jobs.iter().zip(replies) {
        if !held.contains(&job.id) {
            s.stats.leases_lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(payment = %job.payment_id, "lost a payment job's lease; dropping this result");
        } else if job.partial {
            let retry = s.policy.retries_after(attempt_number(job));
            settle_partial(s, tx, job, reply, retry, attempt_detail(job)).await?;
        } else {
            mine.push((job, reply));
        }
    }
    let mut ids: Vec<uuid::Uuid> = mine.iter().map(|(job, _)| job.payment_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut payments: HashMap<uuid::Uuid, PaymentRow> = store::lock_payments(&mut *tx, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut writes = outcomes::Writes::default();
    for (job, reply) in mine {
        if let Some(payment) = payments.get_mut(&job.payment_id) {
            record(s, &mut writes, payment, job, reply);
        }
    }
    writes.flush(tx).await?;
    Ok(())
}

/// The attempt's number, for the retry policy.
fn attempt_number(job: &ClaimedJob) -> u32 {
    u32::try_from(job.attempts).unwrap_or(u32::MAX)
}

/// The timeline detail every outcome of the attempt carries.
fn attempt_detail(job: &ClaimedJob) -> serde_json::Value {
    json!({"attempt": job.attempts, "kind": job.kind})
}

/// What becomes of the job: run again (the provider will call back, or a
/// transient error left retries), or done.
fn end_of(s: &PoolShared, job: &ClaimedJob, reply: &Reply) -> JobEnd {
    match reply {
        Ok(ProviderReply::Pending) => JobEnd::RetryAfter(s.webhook_wait.as_secs_f64()),
        // A partial refund is never given up on a transient error: the
        // provider may have made it, and only asking again under its id
        // can tell. It stays pending (and counting) until it answers.
        Err(_) if s.policy.retries_after(attempt_number(job)) || job.partial => {
            let unit: f64 = rand::thread_rng().gen();
            JobEnd::RetryAfter(s.policy.backoff(attempt_number(job), unit).as_secs_f64())
        }
        _ => JobEnd::Finished,
    }
}

/// Records one held job's outcome on its locked payment.
fn record(
    s: &PoolShared,
    writes: &mut outcomes::Writes,
    payment: &mut PaymentRow,
    job: &ClaimedJob,
    reply: Reply,
) {
    let refund = job.kind == JobKind::Refund;
    let retry = s.policy.retries_after(attempt_number(job));
    let attempt = attempt_detail(job);
    let attempts = (!refund).then_some(job.attempts);
    match reply {
        Ok(ProviderReply::Pending) => {
            if let Some(n) = attempts {
                payment.attempts = n;
                writes.changed(payment);
            }
            writes.note(payment.id, "awaiting_webhook", attempt);
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
            writes.apply(payment, event, &change, attempt);
            let counter = if refund {
                &s.stats.refunded
            } else {
                &s.stats.succeeded
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(ProviderReply::Declined { code, message }) => {
            fail(writes, payment, refund, attempts, &code, &message, attempt);
            s.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) if retry => {
            if let Some(n) = attempts {
                payment.attempts = n;
                writes.changed(payment);
            }
            let detail = json!({"attempt": job.attempts, "kind": job.kind, "code": e.code});
            writes.note(payment.id, "attempt_failed", detail);
            s.stats.retried.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            fail(
                writes, payment, refund, attempts, &e.code, &e.message, attempt,
            );
            s.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
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
fn fail(
    writes: &mut outcomes::Writes,
    payment: &mut PaymentRow,
    refund: bool,
    attempts: Option<i32>,
    code: &str,
    message: &str,
    mut detail: serde_json::Value,
) {
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
    writes.apply(payment, event, &change, detail);
}

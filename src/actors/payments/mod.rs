//! `PaymentsActor` and its pool of `PaymentWorker`s: the payments service
//! in place of Celery. The actor owns the payments database and answers the
//! API's messages; the workers (children of the payments domain, sharing
//! its pool) run the durable job queue; a relay delivers outcomes to
//! `OrdersActor` through the outbox until acknowledged.

pub mod error;
pub mod handlers;
pub mod messages;
pub mod outcomes;
pub mod provider;
pub mod refunds;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use actix::fut::wrap_future;
use actix::{Actor, AsyncContext as _, Context};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

pub use error::PaymentsError;
pub use handlers::PaymentsService;
use messages::*;

use super::metrics::ActorMetrics;
use super::runtime::{every, on_started};

/// How long the job listener waits before reconnecting after an error.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The payments domain actor.
pub struct PaymentsActor {
    pool: PgPool,
    service: PaymentsService,
    metrics: Arc<ActorMetrics>,
    relay_interval: Duration,
    purge_interval: Duration,
}

impl PaymentsActor {
    /// An actor around its service; the pool is the service's own.
    pub fn new(
        service: PaymentsService,
        relay_interval: Duration,
        purge_interval: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
            relay_interval,
            purge_interval,
        }
    }
}

impl Actor for PaymentsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        // The relay: at once after every outcome, and on a timer as the
        // fallback (and for entries whose delivery failed).
        let service = self.service.clone();
        let interval = self.relay_interval;
        ctx.spawn(wrap_future(async move {
            let wake = Arc::clone(&service.shared().outcomes);
            loop {
                let _ = tokio::time::timeout(interval, wake.notified()).await;
                loop {
                    match service.relay_outbox(RelayOutbox).await {
                        // A full batch may have more behind it.
                        Ok(n) if n >= handlers::RELAY_BATCH as u64 => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "payment outcome relay failed; retrying");
                            break;
                        }
                    }
                }
            }
        }));
        // Jobs written by any instance wake this instance's workers.
        let shared = Arc::clone(self.service.shared());
        let pool = self.pool.clone();
        ctx.spawn(wrap_future(async move {
            loop {
                match listen(&pool, &shared).await {
                    Ok(()) => {}
                    Err(e) => tracing::debug!(error = %e, "payment job listener reconnecting"),
                }
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }));
        every(
            ctx,
            self.purge_interval,
            "payment key purge",
            |actor: &Self| {
                let service = actor.service.clone();
                async move { service.purge_keys().await }
            },
        );
    }
}

/// Wakes one worker per `NOTIFY payment_jobs` until the connection fails.
async fn listen(pool: &PgPool, shared: &worker::PoolShared) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("payment_jobs").await?;
    loop {
        listener.recv().await?;
        shared.jobs.notify_one();
    }
}

crate::lifecycle_handlers!(PaymentsActor);
crate::event_source_handlers!(PaymentsActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(PaymentsActor, PaymentsError, $message => $method, $reply);
    };
}

route!(CreatePayment => create_payment, PaymentView);
route!(GetPayment => get_payment, PaymentView);
route!(ListPayments => list_payments, (Vec<PaymentView>, i64));
route!(GetPaymentEvents => payment_events, Vec<PaymentEventView>);
route!(RefundPayment => refund_payment, PaymentView);
route!(refunds::CreateRefund => create_refund, refunds::RefundView);
route!(refunds::CreateRefundOnce => create_refund_once, crate::domain::idempotency::KeyedOutcome);
route!(refunds::ListRefunds => list_refunds, Vec<refunds::RefundView>);
route!(refunds::RefundReturn => refund_return, refunds::RefundView);
route!(ReceiveWebhook => receive_webhook, WebhookOutcome);
route!(SimulateProviderEvent => simulate_event, String);
route!(RelayOutbox => relay_outbox, u64);
route!(GetPoolReport => pool_report, PoolReport);
route!(CreatePaymentOnce => create_payment_once, crate::domain::idempotency::KeyedOutcome);
route!(RefundPaymentOnce => refund_payment_once, crate::domain::idempotency::KeyedOutcome);

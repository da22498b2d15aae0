//! The payment provider behind a trait, and the simulated provider that the
//! product ships: configurable latency, transient errors and timeouts,
//! Stripe's test cards, idempotency keys honoured, and a ledger of every
//! charge so tests can count them. A real provider replaces it by
//! implementing [`PaymentProvider`].

use tracing::Instrument as _;

use crate::telemetry::trace;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::{Delivery, SimulatorSettings};
use crate::domain::payments::card::CardDetails;
use crate::domain::payments::webhook;
use crate::store::payments as store;

/// A charge or refund asked of the provider. `idempotency_key` is the
/// payment id (charges) or the refund id (refunds): the provider makes each
/// at most once, whatever the retries.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    pub idempotency_key: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub card_token: String,
    /// A partial refund (of `amount`, under its own id). The simulator
    /// answers these directly, also in webhook mode: its webhooks name a
    /// payment, not a refund.
    pub partial: bool,
}

/// A provider's definite answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderReply {
    /// Done: charged, or refunded.
    Succeeded,
    /// Refused for good (a decline); retrying cannot help.
    Declined { code: String, message: String },
    /// Accepted; the outcome follows by webhook.
    Pending,
}

/// A failure that a retry may cure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TransientError {
    pub code: String,
    pub message: String,
}

/// What the payment pool needs of a provider.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Exchanges card details for a token the shop may keep (the number and
    /// CVC go no further).
    fn tokenize(&self, card: &CardDetails) -> String;
    /// Charges `call.amount` to the tokenized card.
    fn charge(
        &self,
        call: ProviderCall,
    ) -> LocalBoxFuture<'static, Result<ProviderReply, TransientError>>;
    /// Refunds a charge in full.
    fn refund(
        &self,
        call: ProviderCall,
    ) -> LocalBoxFuture<'static, Result<ProviderReply, TransientError>>;
}

/// What a simulated card does, carried in its token as Stripe's test
/// tokens carry it (`tok_chargeDeclined`…).
fn behaviour(number: &str) -> &'static str {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    match digits.as_str() {
        "4000000000000002" => "card_declined",
        "4000000000009995" => "insufficient_funds",
        "4000000000000119" => "processing_error",
        _ => "ok",
    }
}

/// Where and how the simulator sends webhooks in webhook mode.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: SecretString,
}

/// The simulated provider. Its ledger lives in the payments database
/// (`provider_ledger`), as a real provider's would live on its side.
pub struct SimulatedProvider {
    pool: PgPool,
    settings: SimulatorSettings,
    timeout: Duration,
    delivery: Delivery,
    webhook: std::sync::RwLock<Option<WebhookTarget>>,
    http: reqwest::Client,
    /// Payments whose first call already panicked (the drill).
    panicked: std::sync::Mutex<std::collections::HashSet<Uuid>>,
}

impl SimulatedProvider {
    /// A simulator recording into `pool`.
    pub fn new(
        pool: PgPool,
        settings: SimulatorSettings,
        timeout: Duration,
        delivery: Delivery,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            settings,
            timeout,
            delivery,
            webhook: std::sync::RwLock::new(None),
            http: reqwest::Client::new(),
            panicked: std::sync::Mutex::default(),
        })
    }

    /// Where webhooks go (known once the server has bound its port).
    pub fn set_webhook_target(&self, target: WebhookTarget) {
        if let Ok(mut slot) = self.webhook.write() {
            *slot = Some(target);
        }
    }

    fn webhook_target(&self) -> Option<WebhookTarget> {
        self.webhook.read().ok().and_then(|t| t.clone())
    }

    /// The latency and injected failures every call goes through.
    async fn network(settings: SimulatorSettings, timeout: Duration) -> Result<(), TransientError> {
        let (latency, hang, fail) = {
            let mut rng = rand::thread_rng();
            let jitter = if settings.latency_jitter_ms > 0 {
                rng.gen_range(0..=settings.latency_jitter_ms)
            } else {
                0
            };
            (
                settings.latency_ms + jitter,
                rng.gen_bool(settings.timeout_rate.clamp(0.0, 1.0)),
                rng.gen_bool(settings.transient_error_rate.clamp(0.0, 1.0)),
            )
        };
        if hang {
            tokio::time::sleep(timeout * 2).await;
        }
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if fail {
            return Err(TransientError {
                code: "processing_error".into(),
                message: "the provider had a transient error".into(),
            });
        }
        Ok(())
    }

    fn call(
        self: &Arc<Self>,
        kind: &'static str,
        call: ProviderCall,
    ) -> LocalBoxFuture<'static, Result<ProviderReply, TransientError>> {
        let this = Arc::clone(self);
        Box::pin(async move {
            Self::network(this.settings.clone(), this.timeout).await?;
            if this.settings.panic_on_first_call && this.first_call(call.payment_id) {
                // The drill this setting exists for: a worker that panics
                // mid-job is restarted and its job retried after the lease.
                #[allow(clippy::panic)]
                {
                    panic!("simulated provider drill: panicking on the first call");
                }
            }
            let behaviour = call
                .card_token
                .strip_prefix("tok_sim_")
                .and_then(|rest| rest.rsplit_once('_'))
                .map_or("ok", |(b, _)| b);
            if kind == "refund" && !this.refundable(&call).await? {
                let stands = this
                    .record(
                        kind,
                        &call,
                        "declined",
                        Some("amount_too_large"),
                        Some("the refund is more than what is left of the charge"),
                    )
                    .await?;
                return Ok(ProviderReply::Declined {
                    code: stands.code.unwrap_or_else(|| "declined".into()),
                    message: stands.message.unwrap_or_default(),
                });
            }
            let (outcome, code, message) = match (kind, behaviour) {
                ("charge", "processing_error") => {
                    return Err(TransientError {
                        code: "processing_error".into(),
                        message: "an error occurred while processing the card".into(),
                    });
                }
                ("charge", "card_declined") => (
                    "declined",
                    Some("card_declined"),
                    Some("the card was declined"),
                ),
                ("charge", "insufficient_funds") => (
                    "declined",
                    Some("insufficient_funds"),
                    Some("the card has insufficient funds"),
                ),
                _ => ("succeeded", None, None),
            };
            let stands = this.record(kind, &call, outcome, code, message).await?;
            let reply = match stands.outcome.as_str() {
                "succeeded" => ProviderReply::Succeeded,
                _ => ProviderReply::Declined {
                    code: stands.code.unwrap_or_else(|| "declined".into()),
                    message: stands.message.unwrap_or_default(),
                },
            };
            if this.delivery == Delivery::Webhook && !call.partial {
                this.send_webhook(kind, call.payment_id, &reply);
                return Ok(ProviderReply::Pending);
            }
            Ok(reply)
        })
    }

    /// Whether the ledger leaves room for this refund: what it charged the
    /// payment, less the other refunds it made of it, covers the amount. A
    /// refund it recorded already (a retry) is answered as recorded.
    async fn refundable(&self, call: &ProviderCall) -> Result<bool, TransientError> {
        store::ledger_refundable(
            &self.pool,
            call.payment_id,
            call.idempotency_key,
            call.amount,
        )
        .await
        .map_err(|e| TransientError {
            code: "provider_unavailable".into(),
            message: e.to_string(),
        })
    }

    /// Whether this is the first call for `payment_id` (the panic drill).
    fn first_call(&self, payment_id: Uuid) -> bool {
        self.panicked
            .lock()
            .map(|mut seen| seen.insert(payment_id))
            .unwrap_or(false)
    }

    /// Records the outcome under the call's idempotency key, or finds the
    /// one recorded first: a repeated call never charges twice.
    async fn record(
        &self,
        kind: &str,
        call: &ProviderCall,
        outcome: &str,
        code: Option<&str>,
        message: Option<&str>,
    ) -> Result<store::LedgerRow, TransientError> {
        let unavailable = |e: sqlx::Error| TransientError {
            code: "provider_unavailable".into(),
            message: e.to_string(),
        };
        // A concurrent first call may commit between our insert and read;
        // the second try then reads it.
        let mut tries = 0;
        loop {
            tries += 1;
            match store::ledger_record(
                &self.pool,
                call.idempotency_key,
                kind,
                call.payment_id,
                call.amount,
                &call.currency,
                outcome,
                code,
                message,
            )
            .await
            {
                Err(sqlx::Error::RowNotFound) if tries < 3 => continue,
                other => return other.map_err(unavailable),
            }
        }
    }

    /// Reports an outcome as the real provider would: a signed POST,
    /// retried with backoff until it is acknowledged. A delivery lost to a
    /// crash is made again when the job asks the provider again.
    fn send_webhook(&self, kind: &str, payment_id: Uuid, reply: &ProviderReply) {
        let Some(target) = self.webhook_target() else {
            tracing::warn!("webhook delivery has no target yet; the job will ask again");
            return;
        };
        let event_type = match (kind, reply) {
            ("charge", ProviderReply::Succeeded) => "charge.succeeded",
            ("charge", _) => "charge.failed",
            (_, ProviderReply::Succeeded) => "charge.refunded",
            _ => "charge.refund_failed",
        };
        let (code, message) = match reply {
            ProviderReply::Declined { code, message } => {
                (Some(code.clone()), Some(message.clone()))
            }
            _ => (None, None),
        };
        let body = serde_json::json!({
            "id": format!("evt_{}", Uuid::new_v4().simple()),
            "type": event_type,
            "created": chrono::Utc::now().timestamp(),
            "data": {"payment_id": payment_id, "code": code, "message": message},
        })
        .to_string();
        let http = self.http.clone();
        // The delivery carries the trace of the payment that caused it.
        let span = tracing::Span::current();
        actix::spawn(
            async move {
                deliver_webhook(&http, &target, body).await;
            }
            .instrument(span),
        );
    }

    /// Sends a provider-initiated event (refund, dispute) for a payment, as
    /// `POST /admin/payments/{id}/simulate/` asks.
    pub async fn simulate_event(
        &self,
        event_type: &str,
        payment_id: Uuid,
    ) -> Result<String, String> {
        let target = self
            .webhook_target()
            .ok_or_else(|| "the webhook target is not known yet".to_owned())?;
        let id = format!("evt_{}", Uuid::new_v4().simple());
        let body = serde_json::json!({
            "id": id,
            "type": event_type,
            "created": chrono::Utc::now().timestamp(),
            "data": {"payment_id": payment_id},
        })
        .to_string();
        let http = self.http.clone();
        // The delivery carries the trace of the payment that caused it.
        let span = tracing::Span::current();
        actix::spawn(
            async move {
                deliver_webhook(&http, &target, body).await;
            }
            .instrument(span),
        );
        Ok(id)
    }
}

/// POSTs one signed event until a 2xx (or a 4xx, which no retry can fix),
/// backing off from 100 ms up to 5 s, for at most a few minutes.
async fn deliver_webhook(http: &reqwest::Client, target: &WebhookTarget, body: String) {
    let mut wait = Duration::from_millis(100);
    for _ in 0..40 {
        let now = chrono::Utc::now().timestamp();
        let signature = webhook::header(
            &[target.secret.expose_secret().as_bytes()],
            now,
            body.as_bytes(),
        );
        let sent = http
            .post(&target.url)
            .headers(trace::outgoing_headers(&tracing::Span::current()))
            .header("content-type", "application/json")
            .header("emporium-signature", signature)
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) if r.status().is_client_error() => {
                tracing::error!(status = r.status().as_u16(), "webhook refused; not retried");
                return;
            }
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                "webhook delivery failed; retrying"
            ),
            Err(e) => tracing::warn!(error = %e, "webhook delivery failed; retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    tracing::error!("webhook undelivered; the job will ask the provider again");
}

impl PaymentProvider for Arc<SimulatedProvider> {
    fn tokenize(&self, card: &CardDetails) -> String {
        format!(
            "tok_sim_{}_{}",
            behaviour(&card.number),
            Uuid::new_v4().simple()
        )
    }

    fn charge(
        &self,
        call: ProviderCall,
    ) -> LocalBoxFuture<'static, Result<ProviderReply, TransientError>> {
        self.call("charge", call)
    }

    fn refund(
        &self,
        call: ProviderCall,
    ) -> LocalBoxFuture<'static, Result<ProviderReply, TransientError>> {
        self.call("refund", call)
    }
}

#[cfg(test)]
mod tests {
    use super::behaviour;

    #[test]
    fn stripe_test_cards_behave_as_documented() {
        assert_eq!(behaviour("4242 4242 4242 4242"), "ok");
        assert_eq!(behaviour("4000000000000002"), "card_declined");
        assert_eq!(behaviour("4000000000009995"), "insufficient_funds");
        assert_eq!(behaviour("4000000000000119"), "processing_error");
    }
}

//! The RabbitMQ relay: publishes every public event to a durable topic
//! exchange, with publisher confirms, and only then marks it taken in its
//! domain's outbox.
//!
//! One [`AmqpRelay`] actor runs per instance when `events.amqp_url` is set.
//! It holds one connection and one confirm-mode channel. Each pass asks
//! every [`EventSource`] for the events the AMQP sink has not taken,
//! publishes them (routing key = event type, persistent, `message_id` =
//! event id, body = the CloudEvents envelope), waits for the broker's
//! confirms and acknowledges to the source exactly the events the broker
//! acknowledged. A nack, a returned (unroutable) message or a lost
//! connection acknowledges nothing: the event stays in the outbox and is
//! published again later, so delivery is at least once and consumers
//! de-duplicate by `message_id`. A broker outage delays events, never drops
//! one: the relay reconnects with a doubling backoff (250 ms to 10 s),
//! logging once per outage.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::{wrap_future, ActorFutureExt as _};
use actix::{
    Actor, ActorContext as _, Addr, Arbiter, AsyncContext as _, Context, Supervised, Supervisor,
};
use futures_util::FutureExt as _;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use uuid::Uuid;

use super::events::EventSource;
use crate::config::EventsSettings;
use crate::domain::events::{Event, Sink};
use crate::telemetry::metrics::Metrics;

/// First wait after a failure; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest wait between two attempts to reach the broker.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long opening the connection (TCP, AMQP handshake, exchange, confirm
/// mode) may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the broker may take to confirm a batch before the connection
/// is treated as broken (e.g. a broker blocked by a memory alarm).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);
/// The `content_type` of every message: a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// AMQP `delivery_mode` of a persistent message.
pub const PERSISTENT: u8 = 2;
/// The `app_id` of every message.
const APP_ID: &str = "emporium";

/// A doubling wait between attempts, capped; pure, for the relay's loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubles after each [`Backoff::next`], never above `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// Back to the shortest wait (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The AMQP properties `event` is published with.
pub fn properties(event: &Event) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_timestamp(u64::try_from(event.time.timestamp()).unwrap_or(0))
        .with_app_id(APP_ID.into())
}

/// The relay's series in the instance's Prometheus registry.
#[derive(Clone)]
struct RelayMetrics {
    relayed: metrics::Counter,
    connected: metrics::Gauge,
    connect_failed: metrics::Counter,
    connection_lost: metrics::Counter,
    nacked: metrics::Counter,
    returned: metrics::Counter,
    source_failed: metrics::Counter,
    restarts: metrics::Counter,
}

impl RelayMetrics {
    fn new(telemetry: &Metrics) -> Self {
        telemetry.scope(|| {
            let failure = |reason: &'static str| {
                metrics::counter!(
                    "emporium_events_relay_failures_total",
                    "sink" => "amqp",
                    "reason" => reason
                )
            };
            let connected = metrics::gauge!("emporium_events_relay_connected", "sink" => "amqp");
            connected.set(0.0);
            Self {
                relayed: metrics::counter!("emporium_events_relayed_total", "sink" => "amqp"),
                connected,
                connect_failed: failure("connect"),
                connection_lost: failure("connection_lost"),
                nacked: failure("nacked"),
                returned: failure("returned"),
                source_failed: failure("source"),
                restarts: metrics::counter!(
                    "emporium_actor_restarts_total",
                    "actor" => "amqp_relay"
                ),
            }
        })
    }
}

/// What the relay loop needs, shared with its restarts.
struct Relay {
    url: String,
    exchange: String,
    /// CloudEvents `source` prefix (`/emporium`).
    source_prefix: String,
    sources: Vec<EventSource>,
    interval: Duration,
    batch: i64,
    metrics: RelayMetrics,
}

/// The supervised actor hosting the relay loop.
pub struct AmqpRelay {
    relay: Arc<Relay>,
}

impl AmqpRelay {
    /// Starts the relay on an arbiter of its own (pushed to `arbiters`)
    /// when `settings.amqp_url` is set; `None` (no relay) otherwise.
    pub fn start(
        settings: &EventsSettings,
        sources: Vec<EventSource>,
        telemetry: &Metrics,
        arbiters: &mut Vec<Arbiter>,
    ) -> Option<Addr<AmqpRelay>> {
        if settings.amqp_url.is_empty() {
            return None;
        }
        let relay = Arc::new(Relay {
            url: settings.amqp_url.trim().to_owned(),
            exchange: settings.exchange.clone(),
            source_prefix: settings.source.trim_end_matches('/').to_owned(),
            sources,
            interval: Duration::from_millis(settings.relay_interval_ms.max(1)),
            batch: settings.relay_batch.max(1),
            metrics: RelayMetrics::new(telemetry),
        });
        let arbiter = Arbiter::new();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| AmqpRelay { relay });
        arbiters.push(arbiter);
        tracing::info!(exchange = %settings.exchange, "RabbitMQ relay started");
        Some(addr)
    }
}

impl Actor for AmqpRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let relay = Arc::clone(&self.relay);
        ctx.spawn(
            wrap_future::<_, Self>(AssertUnwindSafe(run(relay)).catch_unwind()).map(
                |_, act, ctx| {
                    // The loop never ends but by a panic: let the
                    // supervisor start it again (nothing is lost; the
                    // outboxes still hold every unconfirmed event).
                    act.relay.metrics.connected.set(0.0);
                    tracing::error!("RabbitMQ relay panicked; restarting it");
                    ctx.stop();
                },
            ),
        );
    }
}

impl Supervised for AmqpRelay {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.relay.metrics.restarts.increment(1);
    }
}

/// An open connection and its confirm-mode channel. Dropping it closes
/// the connection.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    /// Connects, declares the durable topic exchange and enables publisher
    /// confirms.
    async fn open(relay: &Relay) -> lapin::Result<Self> {
        let properties =
            ConnectionProperties::default().with_connection_name("emporium-events-relay".into());
        let connection = Connection::connect(&relay.url, properties).await?;
        let channel = connection.create_channel().await?;
        channel
            .exchange_declare(
                relay.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
        })
    }

    fn is_up(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// Why a pass over one source stopped short.
#[derive(Debug, thiserror::Error)]
enum PassError {
    /// The connection or channel is gone (or the broker stopped confirming):
    /// reconnect.
    #[error("broker connection failed: {0}")]
    Broker(String),
    /// The broker refused some events (nack) or could route them nowhere
    /// (returned): they stay pending and are tried again after a backoff.
    #[error("the broker refused {nacked} event(s) and returned {returned} unroutable one(s)")]
    Refused { nacked: usize, returned: usize },
    /// The domain's outbox could not be read or acknowledged (its database
    /// is down): not a broker problem; the next pass tries again.
    #[error("event source {domain} failed: {error}")]
    Source { domain: &'static str, error: String },
}

/// Reconnects for ever; relays while connected.
async fn run(relay: Arc<Relay>) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // When the current outage began (`None` while connected or before
    // the first attempt): each outage is logged once.
    let mut outage: Option<Instant> = None;
    loop {
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, Link::open(&relay)).await {
            Ok(Ok(link)) => {
                relay.metrics.connected.set(1.0);
                match outage.take() {
                    Some(since) => tracing::info!(
                        down_for_ms = since.elapsed().as_millis() as u64,
                        "RabbitMQ relay reconnected; publishing the events held meanwhile"
                    ),
                    None => tracing::info!("RabbitMQ relay connected"),
                }
                let error = serve(&relay, &link, &mut backoff).await;
                relay.metrics.connected.set(0.0);
                relay.metrics.connection_lost.increment(1);
                drop(link);
                error
            }
            Ok(Err(e)) => {
                relay.metrics.connect_failed.increment(1);
                e.to_string()
            }
            Err(_) => {
                relay.metrics.connect_failed.increment(1);
                "connecting timed out".to_owned()
            }
        };
        if outage.is_none() {
            outage = Some(Instant::now());
            tracing::warn!(
                error = %error,
                "RabbitMQ relay cannot reach the broker; events wait in the outboxes \
                 and are published when it is back"
            );
        } else {
            tracing::debug!(error = %error, "RabbitMQ relay still cannot reach the broker");
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// Relays over `link` until it breaks; returns why it broke.
async fn serve(relay: &Relay, link: &Link, backoff: &mut Backoff) -> String {
    loop {
        if !link.is_up() {
            return "the connection closed".to_owned();
        }
        let mut full = false;
        let mut refused = false;
        for source in &relay.sources {
            match pass(relay, link, source).await {
                Ok(n) => full |= n >= relay.batch as usize,
                Err(PassError::Broker(e)) => return e,
                Err(e @ PassError::Refused { .. }) => {
                    tracing::warn!(error = %e, domain = source.domain, "RabbitMQ relay: events held back");
                    refused = true;
                }
                Err(e @ PassError::Source { .. }) => {
                    relay.metrics.source_failed.increment(1);
                    tracing::debug!(error = %e, "RabbitMQ relay: source not readable now");
                }
            }
        }
        if refused {
            tokio::time::sleep(backoff.next_wait()).await;
        } else {
            backoff.reset();
            if !full {
                tokio::time::sleep(relay.interval).await;
            }
        }
    }
}

/// Publishes one batch of `source`'s pending events and acknowledges the
/// ones the broker confirmed; the number acknowledged.
async fn pass(relay: &Relay, link: &Link, source: &EventSource) -> Result<usize, PassError> {
    let source_error = |error: String| PassError::Source {
        domain: source.domain,
        error,
    };
    let events = source
        .take(Sink::Amqp, relay.batch)
        .await
        .map_err(|e| source_error(e.to_string()))?;
    if events.is_empty() {
        return Ok(0);
    }
    let ce_source = format!("{}/{}", relay.source_prefix, source.domain);
    let mut confirms = Vec::with_capacity(events.len());
    let mut broken = None;
    for event in &events {
        let body = match serde_json::to_vec(&event.envelope(&ce_source)) {
            Ok(body) => body,
            Err(e) => {
                // Cannot happen for JSON values; never ack what was not sent.
                tracing::error!(error = %e, event = %event.id, "event not serialisable; held back");
                continue;
            }
        };
        let published = link
            .channel
            .basic_publish(
                relay.exchange.as_str().into(),
                event.event_type.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties(event),
            )
            .await;
        match published {
            Ok(confirm) => confirms.push((event.id, confirm)),
            Err(e) => {
                broken = Some(e.to_string());
                break;
            }
        }
    }
    // Collect the confirms of what went out, even when the link broke
    // half-way: what the broker acknowledged is acknowledged to the source.
    let (mut acked, mut nacked, mut returned): (Vec<Uuid>, usize, usize) = (Vec::new(), 0, 0);
    let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
    for (id, confirm) in confirms {
        if broken.is_some() {
            // The rest cannot be trusted to resolve; they will be re-sent.
            break;
        }
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => acked.push(id),
            Ok(Ok(Confirmation::Ack(Some(_)))) => returned += 1,
            Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => nacked += 1,
            Ok(Err(e)) => broken = Some(e.to_string()),
            Err(_) => broken = Some("the broker did not confirm in time".to_owned()),
        }
    }
    relay.metrics.nacked.increment(nacked as u64);
    relay.metrics.returned.increment(returned as u64);
    let taken = acked.len();
    if taken > 0 {
        source
            .ack(Sink::Amqp, acked)
            .await
            .map_err(|e| source_error(format!("acknowledging published events: {e}")))?;
        relay.metrics.relayed.increment(taken as u64);
    }
    if let Some(e) = broken {
        return Err(PassError::Broker(e));
    }
    if nacked + returned > 0 {
        return Err(PassError::Refused { nacked, returned });
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::EventType;

    #[test]
    fn backoff_doubles_from_250_ms_to_10_s_and_resets() {
        let mut b = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let waits: Vec<u128> = (0..9).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]
        );
        b.reset();
        assert_eq!(b.next_wait(), BACKOFF_MIN);
    }

    #[test]
    fn backoff_max_below_min_is_min() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(b.next_wait(), Duration::from_secs(2));
        assert_eq!(b.next_wait(), Duration::from_secs(2));
    }

    #[test]
    fn messages_are_persistent_cloudevents_named_by_event() {
        let event = Event::new(
            EventType::OrderPaid,
            "o-1",
            &serde_json::json!({"total": 1}),
        );
        let p = properties(&event);
        assert_eq!(p.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some(CONTENT_TYPE)
        );
        let id = event.id.to_string();
        assert_eq!(
            p.message_id().as_ref().map(|s| s.as_str()),
            Some(id.as_str())
        );
        assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some("order.paid"));
        assert_eq!(
            p.timestamp(),
            &Some(u64::try_from(event.time.timestamp()).unwrap_or(0))
        );
    }
}

//! The webhook fan-out: takes every domain's new outbox events, writes one
//! delivery per subscribed endpoint, and only then acknowledges them, so an
//! event is never lost between the outbox and the deliveries (a fan-out
//! that dies half-way runs again; the (endpoint, event) key keeps it from
//! writing a delivery twice, also across instances).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;

use super::error::WebhooksError;
use super::worker::DeliveryShared;
use crate::actors::events::EventSource;
use crate::domain::events::{subscribed, Sink};
use crate::store::webhooks::{self as store, NewDelivery};

/// The fan-out's settings and sources.
pub struct Fanout {
    pub shared: Arc<DeliveryShared>,
    pub sources: Vec<EventSource>,
    /// CloudEvents source prefix (`/emporium`).
    pub source_prefix: String,
    pub batch: i64,
    /// The sinks that must all have taken an event before it is purged.
    pub purge_sinks: Vec<Sink>,
    pub retention_days: u32,
    running: AtomicBool,
}

impl Fanout {
    /// A fan-out over `sources`.
    pub fn new(
        shared: Arc<DeliveryShared>,
        sources: Vec<EventSource>,
        source_prefix: String,
        batch: i64,
        purge_sinks: Vec<Sink>,
        retention_days: u32,
    ) -> Self {
        Self {
            shared,
            sources,
            source_prefix,
            batch: batch.max(1),
            purge_sinks,
            retention_days,
            running: AtomicBool::new(false),
        }
    }

    /// One pass over every source; a pass still running makes this a no-op.
    pub async fn run(self: Arc<Self>) -> Result<(), WebhooksError> {
        if self.running.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.pass().await;
        self.running.store(false, Ordering::Release);
        result
    }

    async fn pass(&self) -> Result<(), WebhooksError> {
        for source in &self.sources {
            loop {
                let events = source.take(Sink::Webhooks, self.batch).await.map_err(|e| {
                    WebhooksError::Unexpected(anyhow::anyhow!("{}: {e}", source.domain))
                })?;
                if events.is_empty() {
                    break;
                }
                let endpoints = store::active_endpoints(&self.shared.pool).await?;
                let origin = format!("{}/{}", self.source_prefix, source.domain);
                let mut deliveries = Vec::new();
                for event in &events {
                    let mut body = None;
                    for endpoint in endpoints
                        .iter()
                        .filter(|e| subscribed(&e.events, event.event_type))
                    {
                        let body = body.get_or_insert_with(|| {
                            serde_json::to_string(&event.envelope(&origin)).unwrap_or_default()
                        });
                        deliveries.push(NewDelivery {
                            endpoint_id: endpoint.id,
                            event_id: event.id,
                            event_type: event.event_type.as_str().to_owned(),
                            body: body.clone(),
                        });
                    }
                }
                let written = store::insert_deliveries(&self.shared.pool, &deliveries).await?;
                let taken = events.len();
                source
                    .ack(Sink::Webhooks, events.into_iter().map(|e| e.id).collect())
                    .await
                    .map_err(|e| {
                        WebhooksError::Unexpected(anyhow::anyhow!("{}: {e}", source.domain))
                    })?;
                if written > 0 {
                    self.shared.wake();
                }
                if i64::try_from(taken).unwrap_or(i64::MAX) < self.batch {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Deletes outbox events every sink has taken and finished deliveries,
    /// older than the retention.
    pub async fn purge(self: Arc<Self>) -> Result<(), WebhooksError> {
        let before = Utc::now() - chrono::Duration::days(i64::from(self.retention_days));
        for source in &self.sources {
            source
                .purge(self.purge_sinks.clone(), before)
                .await
                .map_err(|e| {
                    WebhooksError::Unexpected(anyhow::anyhow!("{}: {e}", source.domain))
                })?;
        }
        store::purge_deliveries(&self.shared.pool, before).await?;
        Ok(())
    }
}

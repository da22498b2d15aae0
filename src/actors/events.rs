//! The messages every event-producing domain actor answers about its public
//! outbox, and [`EventSource`], the relays' handle on one such actor.
//!
//! A relay (webhook fan-out, the RabbitMQ publisher, mail) asks each source
//! for the events its sink has not taken, hands them on, and only then
//! acknowledges them: an event is taken at least once and never lost;
//! consumers de-duplicate by event id.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Handler, Message};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::runtime::{ActorClient, CallError, RuntimeError, Traced};
use crate::domain::events::{Event, Sink};

/// The oldest events `sink` has not taken, at most `limit`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Vec<Event>, RuntimeError>")]
pub struct TakeEvents {
    pub sink: Sink,
    pub limit: i64,
}

/// `sink` has handed these events on; they are not offered to it again.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<u64, RuntimeError>")]
pub struct AckEvents {
    pub sink: Sink,
    pub ids: Vec<Uuid>,
}

/// Deletes events older than `before` that every one of `sinks` has taken.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<u64, RuntimeError>")]
pub struct PurgeEvents {
    pub sinks: Vec<Sink>,
    pub before: DateTime<Utc>,
}

/// Implements [`TakeEvents`], [`AckEvents`] and [`PurgeEvents`] for an
/// actor with `pool: PgPool` and `metrics: Arc<ActorMetrics>` fields, over
/// `store::events`.
#[macro_export]
macro_rules! event_source_handlers {
    ($actor:ty) => {
        impl actix::Handler<$crate::actors::events::TakeEvents> for $actor {
            type Result = actix::ResponseActFuture<
                Self,
                Result<Vec<$crate::domain::events::Event>, $crate::actors::runtime::RuntimeError>,
            >;
            fn handle(
                &mut self,
                msg: $crate::actors::events::TakeEvents,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                let pool = self.pool.clone();
                $crate::actors::runtime::instrumented(&self.metrics, async move {
                    Ok($crate::store::events::pending(&pool, msg.sink, msg.limit).await?)
                })
            }
        }

        impl actix::Handler<$crate::actors::events::AckEvents> for $actor {
            type Result =
                actix::ResponseActFuture<Self, Result<u64, $crate::actors::runtime::RuntimeError>>;
            fn handle(
                &mut self,
                msg: $crate::actors::events::AckEvents,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                let pool = self.pool.clone();
                $crate::actors::runtime::instrumented(&self.metrics, async move {
                    Ok($crate::store::events::mark_taken(&pool, msg.sink, &msg.ids).await?)
                })
            }
        }

        impl actix::Handler<$crate::actors::events::PurgeEvents> for $actor {
            type Result =
                actix::ResponseActFuture<Self, Result<u64, $crate::actors::runtime::RuntimeError>>;
            fn handle(
                &mut self,
                msg: $crate::actors::events::PurgeEvents,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                let pool = self.pool.clone();
                $crate::actors::runtime::instrumented(&self.metrics, async move {
                    Ok($crate::store::events::purge(&pool, &msg.sinks, msg.before).await?)
                })
            }
        }

        $crate::traced_handler!($actor, $crate::actors::events::TakeEvents);
        $crate::traced_handler!($actor, $crate::actors::events::AckEvents);
        $crate::traced_handler!($actor, $crate::actors::events::PurgeEvents);
    };
}

type Call<M, T> =
    Arc<dyn Fn(M) -> BoxFuture<'static, Result<T, CallError<RuntimeError>>> + Send + Sync>;

/// One event-producing domain, as the relays see it: its name (the
/// CloudEvents `source` is `<events.source>/<name>`) and its outbox
/// messages.
#[derive(Clone)]
pub struct EventSource {
    pub domain: &'static str,
    take: Call<TakeEvents, Vec<Event>>,
    ack: Call<AckEvents, u64>,
    purge: Call<PurgeEvents, u64>,
}

impl EventSource {
    /// The source behind `client`, an actor with the outbox handlers.
    pub fn of<A>(domain: &'static str, client: ActorClient<A>) -> Self
    where
        A: Actor
            + Handler<Traced<TakeEvents>>
            + Handler<Traced<AckEvents>>
            + Handler<Traced<PurgeEvents>>,
        A::Context: ToEnvelope<A, Traced<TakeEvents>>
            + ToEnvelope<A, Traced<AckEvents>>
            + ToEnvelope<A, Traced<PurgeEvents>>,
    {
        let (c1, c2, c3) = (client.clone(), client.clone(), client);
        Self {
            domain,
            take: Arc::new(move |m| {
                let c = c1.clone();
                Box::pin(async move { c.call(m).await })
            }),
            ack: Arc::new(move |m| {
                let c = c2.clone();
                Box::pin(async move { c.call(m).await })
            }),
            purge: Arc::new(move |m| {
                let c = c3.clone();
                Box::pin(async move { c.call(m).await })
            }),
        }
    }

    /// The oldest events `sink` has not taken.
    pub async fn take(
        &self,
        sink: Sink,
        limit: i64,
    ) -> Result<Vec<Event>, CallError<RuntimeError>> {
        (self.take)(TakeEvents { sink, limit }).await
    }

    /// Marks `ids` taken by `sink`.
    pub async fn ack(&self, sink: Sink, ids: Vec<Uuid>) -> Result<u64, CallError<RuntimeError>> {
        (self.ack)(AckEvents { sink, ids }).await
    }

    /// Deletes old events every one of `sinks` has taken.
    pub async fn purge(
        &self,
        sinks: Vec<Sink>,
        before: DateTime<Utc>,
    ) -> Result<u64, CallError<RuntimeError>> {
        (self.purge)(PurgeEvents { sinks, before }).await
    }
}

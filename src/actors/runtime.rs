//! The actor runtime shared by every domain: bounded admission with a fast
//! 503, call timeouts, panic containment with supervised restarts, and the
//! lifecycle messages (readiness ping, diagnostics probe, shutdown) that
//! every pool-owning actor answers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::fut::{wrap_future, ActorFutureExt as _};
use actix::{
    Actor, Addr, AsyncContext as _, Context, Handler, MailboxError, Message, ResponseActFuture,
};
use futures_util::FutureExt as _;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::metrics::ActorMetrics;

/// A handler's future panicked; the actor is being restarted.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a handler panicked and its actor was restarted")]
pub struct HandlerPanicked;

/// Why a call to an actor produced no domain reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The mailbox already holds `capacity` unanswered messages.
    #[error("the {0} actor's mailbox is full")]
    MailboxFull(&'static str),
    /// The actor is stopped (shutdown) or its mailbox is closed.
    #[error("the {0} actor is not running")]
    Unavailable(&'static str),
    /// No reply within the call timeout.
    #[error("the {0} actor did not answer in time")]
    Timeout(&'static str),
    /// The actor answered with an error of its domain.
    #[error(transparent)]
    Domain(E),
}

/// A message as it travels to an actor: the typed message and the span of
/// the call that sent it, so the handler's span joins the caller's trace
/// (and its logs name the caller's request id) across the hop.
pub struct Traced<M> {
    /// The message itself.
    pub msg: M,
    /// The sender's span when it sent the message.
    pub parent: tracing::Span,
}

impl<M: Message> Message for Traced<M> {
    type Result = M::Result;
}

impl<M> Traced<M> {
    /// The span a handler of this message runs in: a child of the sender's.
    pub fn span(&self, actor: &'static str) -> tracing::Span {
        let message = short_type_name(std::any::type_name::<M>());
        let message = message.as_ref();
        let span = tracing::info_span!(
            parent: &self.parent,
            "actor",
            actor,
            message,
            otel.name = tracing::field::Empty,
        );
        if crate::telemetry::trace::exporting() {
            span.record("otel.name", format!("{actor} {message}"));
        }
        span
    }
}

/// A type's name without its paths: `CreateOrder`, or for a generic
/// message `Keyed<CreateOrder, OrderView, OrdersError>`.
fn short_type_name(full: &'static str) -> std::borrow::Cow<'static, str> {
    let last = |path: &'static str| path.rsplit("::").next().unwrap_or(path);
    if !full.contains('<') {
        return last(full).into();
    }
    let mut out = String::with_capacity(full.len());
    let mut start = 0;
    for (i, c) in full.char_indices() {
        if matches!(c, '<' | '>' | ',' | ' ') {
            out.push_str(last(&full[start..i]));
            out.push(c);
            start = i + 1;
        }
    }
    out.push_str(last(&full[start..]));
    out.into()
}

/// The edge's handle on one actor: its address, its metrics and the call
/// timeout. Every call from the edge goes through [`ActorClient::call`].
pub struct ActorClient<A: Actor> {
    addr: Addr<A>,
    metrics: Arc<ActorMetrics>,
    timeout: Duration,
}

impl<A: Actor> Clone for ActorClient<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            metrics: Arc::clone(&self.metrics),
            timeout: self.timeout,
        }
    }
}

impl<A: Actor> ActorClient<A> {
    /// Wraps an address.
    pub fn new(addr: Addr<A>, metrics: Arc<ActorMetrics>, timeout: Duration) -> Self {
        Self {
            addr,
            metrics,
            timeout,
        }
    }

    /// The actor's metrics.
    pub fn metrics(&self) -> &Arc<ActorMetrics> {
        &self.metrics
    }

    /// Sends `msg` and flattens the reply. A full mailbox fails at once
    /// (never waits); a reply slower than the timeout fails with `Timeout`.
    pub async fn call<M, T, E>(&self, msg: M) -> Result<T, CallError<E>>
    where
        M: Message<Result = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
        A: Handler<Traced<M>>,
        A::Context: ToEnvelope<A, Traced<M>>,
    {
        let name = self.metrics.name();
        let _slot = self
            .metrics
            .try_admit()
            .ok_or(CallError::MailboxFull(name))?;
        let msg = Traced {
            msg,
            parent: tracing::Span::current(),
        };
        match tokio::time::timeout(self.timeout, self.addr.send(msg)).await {
            Ok(Ok(reply)) => reply.map_err(CallError::Domain),
            Ok(Err(MailboxError::Closed)) => Err(CallError::Unavailable(name)),
            Ok(Err(MailboxError::Timeout)) | Err(_) => {
                self.metrics.record_timeout();
                Err(CallError::Timeout(name))
            }
        }
    }
}

/// Runs a handler's work as a future beside the actor's other messages (the
/// mailbox is not serialised), records its latency and outcome, and turns a
/// panic into `E::from(HandlerPanicked)` plus a supervised restart. The
/// restart loses other messages in flight, as supervision always does.
pub fn instrumented<A, T, E, F>(
    metrics: &Arc<ActorMetrics>,
    work: F,
) -> ResponseActFuture<A, Result<T, E>>
where
    A: Actor<Context = Context<A>>,
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: From<HandlerPanicked> + 'static,
{
    let metrics = Arc::clone(metrics);
    let started = Instant::now();
    let running = metrics.start_handler();
    // Called inside a `Traced` handler, the current span is the message's:
    // the work, its SQL and Redis calls, and its logs run inside it.
    let work = work.instrument(tracing::Span::current());
    let guarded = AssertUnwindSafe(work).catch_unwind();
    Box::pin(
        wrap_future::<_, A>(guarded).map(move |outcome, _actor, ctx| match outcome {
            Ok(reply) => {
                drop(running);
                metrics.record_handled(started.elapsed(), reply.is_ok());
                reply
            }
            Err(_) => {
                drop(running);
                metrics.record_panic(started.elapsed());
                tracing::error!(
                    actor = metrics.name(),
                    "handler panicked; restarting the actor"
                );
                actix::ActorContext::stop(ctx);
                Err(E::from(HandlerPanicked))
            }
        }),
    )
}

/// Sizes the actix mailbox to the admission capacity; called from each
/// actor's `started`.
pub fn on_started<A>(ctx: &mut Context<A>, metrics: &ActorMetrics)
where
    A: Actor<Context = Context<A>>,
{
    ctx.set_mailbox_capacity(metrics.snapshot().capacity);
    tracing::debug!(actor = metrics.name(), "actor started");
}

/// Runs `work` every `interval` beside the actor's messages, logging a
/// failure and trying again at the next tick.
pub fn every<A, F, Fut, E>(ctx: &mut Context<A>, interval: Duration, what: &'static str, work: F)
where
    A: Actor<Context = Context<A>>,
    F: Fn(&A) -> Fut + 'static,
    Fut: Future<Output = Result<(), E>> + 'static,
    E: std::fmt::Display + 'static,
{
    ctx.run_interval(interval, move |actor, ctx| {
        let run = work(actor);
        actix::AsyncContext::spawn(
            ctx,
            wrap_future(async move {
                if let Err(e) = run.await {
                    tracing::warn!(error = %e, what, "periodic task failed; retrying next interval");
                }
            }),
        );
    });
}

/// Errors of the lifecycle messages, which belong to no domain.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The actor's database did not answer.
    #[error("database unreachable: {0}")]
    Database(#[from] sqlx::Error),
}

/// Readiness check: the actor answers and its database answers `SELECT 1`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct Ping;

/// Diagnostics: hold a mailbox slot for `sleep_ms`, then optionally panic.
/// Reachable over HTTP only when `diagnostics.enabled` is set.
#[derive(Debug, Clone, Copy, Deserialize, Message, utoipa::ToSchema)]
#[rtype(result = "Result<ProbeReply, RuntimeError>")]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// How long the handler sleeps (at most a minute).
    #[serde(default)]
    #[schema(maximum = 60_000)]
    pub sleep_ms: u64,
    /// Whether the handler panics after sleeping.
    #[serde(default)]
    pub panic: bool,
}

/// What a probe reports back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProbeReply {
    /// The actor that answered.
    pub actor: &'static str,
    /// How long it slept.
    pub slept_ms: u64,
}

/// Closes the actor's pool before its arbiter stops.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct Shutdown;

/// The work behind [`Ping`].
pub async fn ping_database(pool: sqlx::PgPool) -> Result<(), RuntimeError> {
    sqlx::query("SELECT 1").execute(&pool).await?;
    Ok(())
}

/// The work behind [`Probe`].
pub async fn run_probe(actor: &'static str, probe: Probe) -> Result<ProbeReply, RuntimeError> {
    let slept_ms = probe.sleep_ms.min(60_000);
    // A zero sleep would still wait for the timer's next tick.
    if slept_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slept_ms)).await;
    }
    // A deliberate panic is the point of this probe: it exercises supervision.
    #[allow(clippy::panic)]
    if probe.panic {
        panic!("diagnostics probe asked the {actor} actor to panic");
    }
    Ok(ProbeReply { actor, slept_ms })
}

/// Implements `Supervised` (counting restarts) and the lifecycle messages
/// for an actor with `pool: PgPool` and `metrics: Arc<ActorMetrics>` fields.
#[macro_export]
macro_rules! lifecycle_handlers {
    ($actor:ty) => {
        impl actix::Supervised for $actor {
            fn restarting(&mut self, _ctx: &mut actix::Context<Self>) {
                self.metrics.record_restart();
                tracing::warn!(
                    actor = self.metrics.name(),
                    "actor restarted by its supervisor"
                );
            }
        }

        impl actix::Handler<$crate::actors::runtime::Ping> for $actor {
            type Result =
                actix::ResponseActFuture<Self, Result<(), $crate::actors::runtime::RuntimeError>>;
            fn handle(
                &mut self,
                _: $crate::actors::runtime::Ping,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                $crate::actors::runtime::instrumented(
                    &self.metrics,
                    $crate::actors::runtime::ping_database(self.pool.clone()),
                )
            }
        }

        impl actix::Handler<$crate::actors::runtime::Probe> for $actor {
            type Result = actix::ResponseActFuture<
                Self,
                Result<$crate::actors::runtime::ProbeReply, $crate::actors::runtime::RuntimeError>,
            >;
            fn handle(
                &mut self,
                probe: $crate::actors::runtime::Probe,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                $crate::actors::runtime::instrumented(
                    &self.metrics,
                    $crate::actors::runtime::run_probe(self.metrics.name(), probe),
                )
            }
        }

        impl actix::Handler<$crate::actors::runtime::Shutdown> for $actor {
            type Result =
                actix::ResponseActFuture<Self, Result<(), $crate::actors::runtime::RuntimeError>>;
            fn handle(
                &mut self,
                _: $crate::actors::runtime::Shutdown,
                _: &mut actix::Context<Self>,
            ) -> Self::Result {
                let pool = self.pool.clone();
                Box::pin(actix::fut::wrap_future(async move {
                    pool.close().await;
                    Ok(())
                }))
            }
        }

        $crate::traced_handler!($actor, $crate::actors::runtime::Ping);
        $crate::traced_handler!($actor, $crate::actors::runtime::Probe);
        $crate::traced_handler!($actor, $crate::actors::runtime::Shutdown);
    };
}

/// Lets an actor receive `$message` as [`Traced`]: the handler runs inside
/// a span that is a child of the sender's. (One impl per message: a blanket
/// impl over every message sends trait resolution into a loop.)
#[macro_export]
macro_rules! traced_handler {
    ($actor:ty, $message:ty) => {
        impl actix::Handler<$crate::actors::runtime::Traced<$message>> for $actor {
            type Result = <Self as actix::Handler<$message>>::Result;

            fn handle(
                &mut self,
                traced: $crate::actors::runtime::Traced<$message>,
                ctx: &mut actix::Context<Self>,
            ) -> Self::Result {
                let span = traced.span(self.metrics.name());
                let _entered = span.enter();
                <Self as actix::Handler<$message>>::handle(self, traced.msg, ctx)
            }
        }
    };
}

/// Implements `Handler<$message>` for an actor with `service` and `metrics`
/// fields by calling `service.$method(msg)` under [`instrumented`].
#[macro_export]
macro_rules! route_to_service {
    ($actor:ty, $error:ty, $message:ty => $method:ident, $reply:ty) => {
        impl actix::Handler<$message> for $actor {
            type Result = actix::ResponseActFuture<Self, Result<$reply, $error>>;

            fn handle(&mut self, msg: $message, _: &mut actix::Context<Self>) -> Self::Result {
                let service = self.service.clone();
                $crate::actors::runtime::instrumented(&self.metrics, async move {
                    service.$method(msg).await
                })
            }
        }

        $crate::traced_handler!($actor, $message);
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_names_drop_their_paths_also_inside_generics() {
        assert_eq!(super::short_type_name("a::b::CreateOrder"), "CreateOrder");
        assert_eq!(
            super::short_type_name("a::Keyed<a::b::CreateOrder, a::c::OrderView>"),
            "Keyed<CreateOrder, OrderView>"
        );
    }
}

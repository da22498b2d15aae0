//! `EdgeActor`: owns the HTTP server's lifecycle. On SIGTERM or SIGINT (or a
//! `StopServer` message) it throws the drain switch (responses close their
//! keep-alive connections, `/readyz` answers 503), keeps serving for the
//! drain delay, then stops accepting connections and lets in-flight
//! requests finish within the shutdown timeout.

use std::time::Duration;

use actix::{Actor, AsyncContext as _, Context, Handler, Message, ResponseFuture};
use actix_web::dev::ServerHandle;

use crate::http::drain::Drain;

/// Stop the HTTP server; `graceful` drains in-flight requests first.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopServer {
    pub graceful: bool,
}

/// The edge's lifecycle actor.
pub struct EdgeActor {
    server: ServerHandle,
    drain: Drain,
    drain_delay: Duration,
    listen_for_signals: bool,
}

impl EdgeActor {
    /// An actor for `server`, throwing `drain` `drain_delay` before the
    /// listener closes; `listen_for_signals` is off in tests, where many
    /// instances share one process.
    pub fn new(
        server: ServerHandle,
        drain: Drain,
        drain_delay: Duration,
        listen_for_signals: bool,
    ) -> Self {
        Self {
            server,
            drain,
            drain_delay,
            listen_for_signals,
        }
    }
}

impl Actor for EdgeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.listen_for_signals {
            let me = ctx.address();
            actix_rt::spawn(async move {
                let signal = wait_for_stop_signal().await;
                tracing::info!(signal, "stop signal received; draining in-flight requests");
                me.do_send(StopServer { graceful: true });
            });
        }
    }
}

impl Handler<StopServer> for EdgeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopServer, _: &mut Context<Self>) -> Self::Result {
        let server = self.server.clone();
        if !msg.graceful {
            return Box::pin(async move { server.stop(false).await });
        }
        self.drain.begin();
        let delay = self.drain_delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "draining: answering with Connection: close before the listener closes"
                );
                tokio::time::sleep(delay).await;
            }
            server.stop(true).await
        })
    }
}

async fn wait_for_stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

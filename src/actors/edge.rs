//! `EdgeActor`: owns the HTTP server's lifecycle. On SIGTERM or SIGINT (or a
//! `StopServer` message) it stops accepting connections and lets in-flight
//! requests finish within the configured drain time.

use actix::{Actor, AsyncContext as _, Context, Handler, Message, ResponseFuture};
use actix_web::dev::ServerHandle;

/// Stop the HTTP server; `graceful` drains in-flight requests first.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopServer {
    pub graceful: bool,
}

/// The edge's lifecycle actor.
pub struct EdgeActor {
    server: ServerHandle,
    listen_for_signals: bool,
}

impl EdgeActor {
    /// An actor for `server`; `listen_for_signals` is off in tests, where
    /// many instances share one process.
    pub fn new(server: ServerHandle, listen_for_signals: bool) -> Self {
        Self {
            server,
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
        Box::pin(async move { server.stop(msg.graceful).await })
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

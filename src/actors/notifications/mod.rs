//! `NotificationsActor`: customer mail. Owns the notifications database
//! and its durable mail queue; renders mails (`domain::notifications`),
//! queues them, and runs a sender that claims due mails under a lease and
//! hands them to the transport (SMTP, or the log in development), retrying
//! with backoff. A relay turns the public events of the other domains
//! (order placed, parcel shipped, refund made) into mails, acknowledging
//! each event only after its mail is queued.

pub mod relay;
pub mod sender;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::fut::wrap_future;
use actix::{Actor, AsyncContext as _, Context, Message};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::auth::AuthActor;
use super::events::EventSource;
use super::metrics::ActorMetrics;
use super::runtime::{every, on_started, ActorClient, HandlerPanicked};
use crate::config::{EmailSettings, EmailTransport};
use crate::domain::notifications::{self as mail, Brand, Mail, MailKind, RenderError};
use crate::store::notifications as store;

/// How long queued-order records are kept for the mails that follow an
/// order (shipping, refunds).
const ORDER_RECORD_DAYS: u32 = 365;
/// How often sent and failed mails past their retention are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Errors of the notifications domain.
#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    /// A template failed: a bug.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The notifications database cannot answer now: retry later.
    #[error("the notifications database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(NotificationsError, "notifications database");

/// What the relay needs from the other domains, known once they are
/// started (auth, a producer of events, is itself a sender of mail).
pub struct MailLinks {
    /// The outboxes to turn into mail.
    pub sources: Vec<EventSource>,
    /// Where a customer's address is looked up.
    pub auth: ActorClient<AuthActor>,
}

/// Queue a mail carrying a single-use token (welcome, verification,
/// password reset) to `to`. `source_id` identifies the token: the same
/// token never mails twice. Answers whether a mail was queued.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, NotificationsError>")]
pub struct SendTokenMail {
    pub kind: MailKind,
    pub source_id: Uuid,
    pub to: String,
    pub name: String,
    pub token: String,
    pub valid_minutes: i64,
}

/// The notifications domain's state, shared by handlers and loops.
#[derive(Clone)]
pub struct NotificationsService {
    pool: PgPool,
    settings: Arc<EmailSettings>,
    brand: Arc<Brand>,
    /// Wakes the sender when a mail is queued.
    wake: Arc<Notify>,
    links: Arc<OnceLock<MailLinks>>,
    relay_interval: Duration,
    relay_batch: i64,
}

impl NotificationsService {
    /// The service over `pool`; the relay starts once `links` is set.
    pub fn new(
        pool: PgPool,
        settings: EmailSettings,
        links: Arc<OnceLock<MailLinks>>,
        relay_interval: Duration,
        relay_batch: i64,
    ) -> Self {
        let brand = Brand::new(&settings.shop_name, &settings.public_url);
        Self {
            pool,
            settings: Arc::new(settings),
            brand: Arc::new(brand),
            wake: Arc::new(Notify::new()),
            links,
            relay_interval,
            relay_batch,
        }
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Renders `mail` and queues it to `to` in the caller's transaction;
    /// `false` when it was queued before.
    pub(crate) async fn queue(
        &self,
        conn: &mut sqlx::PgConnection,
        to: &str,
        source_id: Uuid,
        mail: &Mail,
    ) -> Result<bool, NotificationsError> {
        let rendered = mail::render(mail, &self.brand)?;
        let queued = store::enqueue(
            conn,
            &store::NewMail {
                kind: mail.kind().as_str(),
                source_id,
                recipient: to,
                subject: &rendered.subject,
                body_text: &rendered.text,
                body_html: &rendered.html,
            },
        )
        .await?;
        Ok(queued)
    }

    pub async fn send_token_mail(&self, msg: SendTokenMail) -> Result<bool, NotificationsError> {
        let Some(mail) = mail::token_mail(
            msg.kind,
            &msg.name,
            &msg.token,
            msg.valid_minutes,
            &self.brand,
        ) else {
            return Err(NotificationsError::Unexpected(anyhow::anyhow!(
                "{} is not a token mail",
                msg.kind.as_str()
            )));
        };
        let mut conn = self.pool.acquire().await?;
        let queued = self.queue(&mut conn, &msg.to, msg.source_id, &mail).await?;
        drop(conn);
        if queued {
            self.wake.notify_one();
        }
        Ok(queued)
    }
}

/// The notifications domain actor.
pub struct NotificationsActor {
    pool: PgPool,
    service: NotificationsService,
    metrics: Arc<ActorMetrics>,
}

impl NotificationsActor {
    /// An actor around its service.
    pub fn new(service: NotificationsService, metrics: Arc<ActorMetrics>) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
        }
    }
}

impl Actor for NotificationsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        let service = self.service.clone();
        if service.settings.transport == EmailTransport::Log {
            tracing::info!("email.transport is \"log\": mails are written to the log, not sent");
        }
        // The loops run beside the actor's messages; a restart (after a
        // panic) starts them again, and leases return what was in flight.
        match sender::Sender::new(&service) {
            Ok(sender) => {
                ctx.spawn(wrap_future(sender.run()));
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "mail sender not started"),
        }
        ctx.spawn(wrap_future(relay::run(service.clone())));
        every(ctx, PURGE_INTERVAL, "mail purge", |actor: &Self| {
            let pool = actor.pool.clone();
            let days = actor.service.settings.retention_days;
            async move {
                store::purge(&pool, days, ORDER_RECORD_DAYS)
                    .await
                    .map(|_| ())
            }
        });
    }
}

crate::lifecycle_handlers!(NotificationsActor);

crate::route_to_service!(NotificationsActor, NotificationsError, SendTokenMail => send_token_mail, bool);

//! The mail sender: claims due mails from the queue under a lease, hands
//! each to the transport, and records the outcome only while it still
//! holds the lease (the fence). A transient failure is retried after the
//! next wait of `email.retry_schedule_ms`; a permanent one (an SMTP 5xx,
//! e.g. an unknown mailbox) or the last allowed attempt makes the mail
//! `failed` for good.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use rand::Rng as _;

use super::NotificationsService;
use crate::config::EmailTransport;
use crate::domain::notifications::MailKind;
use crate::store::notifications::{self as store, ClaimedMail};

/// How a mail leaves.
enum Transport {
    Log,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Why an attempt failed.
enum Failure {
    /// Worth another attempt (connection refused, timeout, 4xx).
    Transient(String),
    /// Never going to work for this mail (5xx, an unusable address).
    Permanent(String),
}

/// One sender: a loop over the queue.
pub struct Sender {
    service: NotificationsService,
    transport: Transport,
    from: Mailbox,
}

impl Sender {
    /// A sender for `service`'s settings.
    pub fn new(service: &NotificationsService) -> anyhow::Result<Self> {
        let s = &service.settings;
        let from: Mailbox = s.from.parse().context("email.from is not a mailbox")?;
        let transport = match s.transport {
            EmailTransport::Log => Transport::Log,
            EmailTransport::Smtp => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.smtp_url)
                    .context("email.smtp_url")?
                    .timeout(Some(Duration::from_millis(s.send_timeout_ms)))
                    .build(),
            ),
        };
        Ok(Self {
            service: service.clone(),
            transport,
            from,
        })
    }

    /// Sends due mails until the actor stops.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.service.settings.poll_interval_ms);
        loop {
            match self.once().await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(poll, self.service.wake.notified()).await;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "mail queue unavailable; retrying");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// Sends one due mail; `false` when none was due.
    async fn once(&self) -> anyhow::Result<bool> {
        let settings = &self.service.settings;
        let pool = &self.service.pool;
        let lease = Duration::from_secs(settings.lease_secs).as_secs_f64();
        let Some(mail) = store::claim(pool, lease).await? else {
            return Ok(false);
        };
        let erase = MailKind::parse(&mail.kind).is_some_and(MailKind::carries_secret);
        let outcome = self.deliver(&mail).await;
        let attempt = u32::try_from(mail.attempts).unwrap_or(u32::MAX);
        let held = match outcome {
            Ok(()) => {
                let held = store::mark_sent(pool, mail.id, mail.lease_token, erase).await?;
                if held {
                    metrics::counter!("emporium_mails_total", "outcome" => "sent").increment(1);
                    tracing::info!(mail = %mail.id, kind = %mail.kind, attempt, "mail sent");
                }
                held
            }
            Err(Failure::Transient(error)) if attempt < settings.max_attempts => {
                let wait = settings.retry_wait_ms(attempt) as f64 / 1000.0;
                let jitter: f64 = rand::thread_rng().gen_range(0.8..=1.2);
                tracing::warn!(mail = %mail.id, kind = %mail.kind, attempt, %error, "mail not sent; will retry");
                metrics::counter!("emporium_mails_total", "outcome" => "retried").increment(1);
                store::retry(pool, mail.id, mail.lease_token, wait * jitter, &error).await?
            }
            Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                tracing::error!(mail = %mail.id, kind = %mail.kind, attempt, %error, "mail failed for good");
                metrics::counter!("emporium_mails_total", "outcome" => "failed").increment(1);
                store::give_up(pool, mail.id, mail.lease_token, &error, erase).await?
            }
        };
        if !held {
            tracing::warn!(mail = %mail.id, "lost a mail's lease; another sender owns it now");
        }
        Ok(true)
    }

    /// Hands one mail to the transport.
    async fn deliver(&self, mail: &ClaimedMail) -> Result<(), Failure> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| Failure::Permanent(format!("recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@emporium>", mail.id)))
            .multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                mail.body_html.clone(),
            ))
            .map_err(|e| Failure::Permanent(format!("building the message: {e}")))?;
        match &self.transport {
            Transport::Log => {
                let secret = crate::domain::notifications::MailKind::parse(&mail.kind)
                    .is_some_and(|k| k.carries_secret());
                let body = if secret && !self.service.settings.log_tokens {
                    "(withheld outside development: it carries a one-time token)"
                } else {
                    mail.body_text.as_str()
                };
                tracing::info!(
                    target: "emporium::mail",
                    mail = %mail.id,
                    kind = %mail.kind,
                    to = %mail.recipient,
                    subject = %mail.subject,
                    "mail (transport \"log\", not sent):\n{}",
                    body
                );
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let timeout = Duration::from_millis(self.service.settings.send_timeout_ms);
                match tokio::time::timeout(timeout, smtp.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(Failure::Transient(e.to_string())),
                    Err(_) => Err(Failure::Transient(
                        "the SMTP server did not answer in time".into(),
                    )),
                }
            }
        }
    }
}

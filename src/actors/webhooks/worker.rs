//! The delivery pool: `DeliveryWorker` actors, each supervised, claiming
//! due deliveries from the webhooks database (`FOR UPDATE SKIP LOCKED`
//! under a lease), POSTing them signed as Standard Webhooks asks, and
//! recording the outcome only while they still hold the lease.
//!
//! Targets are checked against SSRF at every attempt: the URL as written,
//! then every address its name resolves to (the client connects only to
//! addresses that passed, so a name cannot be re-pointed between the check
//! and the connection), and redirects are not followed.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::fut::{wrap_future, ActorFutureExt as _};
use actix::{Actor, ActorContext as _, AsyncContext as _, Context, Supervised};
use chrono::Utc;
use futures_util::FutureExt as _;
use rand::Rng as _;
use reqwest_tls as http;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::WebhookSettings;
use crate::domain::webhooks::{
    address_allowed, check_url, excerpt, retry_after, secret_key, signature_header,
};
use crate::store::webhooks::{self as store, AttemptRecord, ClaimedDelivery};

/// Counters of the pool, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub attempts: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
    pub endpoints_disabled: AtomicU64,
}

/// What every delivery worker shares.
pub struct DeliveryShared {
    pub pool: PgPool,
    client: http::Client,
    schedule: Vec<u64>,
    disable_after: chrono::Duration,
    lease: Duration,
    poll_interval: Duration,
    claim_batch: i64,
    pub allow_loopback_http: bool,
    excerpt_bytes: usize,
    jobs: Notify,
    pub stats: DeliveryStats,
}

impl DeliveryShared {
    /// The pool's shared state over the webhooks database.
    pub fn new(pool: PgPool, settings: &WebhookSettings) -> anyhow::Result<Self> {
        let client = http::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.min(5_000)))
            .redirect(http::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Emporium-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicOnly {
                allow_loopback: settings.allow_loopback_http,
            }))
            .build()?;
        let hours = settings.disable_after_hours.max(0.0);
        Ok(Self {
            pool,
            client,
            schedule: settings.retry_schedule_ms.clone(),
            disable_after: chrono::Duration::milliseconds((hours * 3_600_000.0) as i64),
            lease: Duration::from_secs(settings.lease_secs.max(1)),
            poll_interval: Duration::from_millis(settings.poll_interval_ms.max(10)),
            claim_batch: settings.claim_batch.max(1),
            allow_loopback_http: settings.allow_loopback_http,
            excerpt_bytes: settings.response_excerpt_bytes,
            jobs: Notify::new(),
            stats: DeliveryStats::default(),
        })
    }

    /// Wakes idle workers: new deliveries are due.
    pub fn wake(&self) {
        self.jobs.notify_waiters();
    }
}

/// Resolves names to the addresses a delivery may connect to, refusing a
/// name with none.
struct PublicOnly {
    allow_loopback: bool,
}

impl http::dns::Resolve for PublicOnly {
    fn resolve(&self, name: http::dns::Name) -> http::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| address_allowed(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                // The addresses stay out of the message: it is shown in the
                // deliveries log, which must not map internal names.
                tracing::debug!(%host, addresses = ?found, "webhook target refused after DNS");
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: http::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// One worker of the pool.
pub struct DeliveryWorker {
    shared: Arc<DeliveryShared>,
}

impl DeliveryWorker {
    /// A worker of the pool `shared`.
    pub fn new(shared: Arc<DeliveryShared>) -> Self {
        Self { shared }
    }
}

impl Actor for DeliveryWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let shared = Arc::clone(&self.shared);
        ctx.spawn(wrap_future::<_, Self>(run(shared)).map(|(), _, ctx| {
            // The loop only ends when a delivery panicked: let the
            // supervisor restart this worker.
            ctx.stop();
        }));
    }
}

impl Supervised for DeliveryWorker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("webhook delivery worker restarted by its supervisor");
    }
}

async fn run(shared: Arc<DeliveryShared>) {
    loop {
        match AssertUnwindSafe(deliver_once(&shared)).catch_unwind().await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let _ = tokio::time::timeout(shared.poll_interval, shared.jobs.notified()).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "webhook delivery failed to run; retrying");
                tokio::time::sleep(shared.poll_interval).await;
            }
            Err(_) => {
                tracing::error!("webhook delivery panicked; its lease will return it to the queue");
                return;
            }
        }
    }
}

/// Claims a batch of due deliveries and attempts them side by side;
/// `false` when none was due. Successes are recorded together, failures
/// one by one (each has its own retry time and may disable its endpoint).
async fn deliver_once(s: &DeliveryShared) -> anyhow::Result<bool> {
    let claimed = store::claim(&s.pool, s.lease.as_secs_f64(), s.claim_batch).await?;
    if claimed.is_empty() {
        return Ok(false);
    }
    s.stats
        .attempts
        .fetch_add(claimed.len() as u64, Ordering::Relaxed);
    let outcomes = futures_util::future::join_all(claimed.iter().map(|d| attempt(s, d))).await;
    let (succeeded, failed): (Vec<_>, Vec<_>) = claimed
        .iter()
        .zip(outcomes.iter())
        .partition(|(_, outcome)| outcome.succeeded);
    s.stats
        .succeeded
        .fetch_add(succeeded.len() as u64, Ordering::Relaxed);
    let records: Vec<_> = succeeded.iter().map(|(d, o)| (*d, &o.record)).collect();
    store::record_successes(&s.pool, &records).await?;
    for (delivery, outcome) in failed {
        record_failure(s, delivery, outcome).await?;
    }
    Ok(true)
}

/// Records a failed attempt: schedules the retry (or gives up), and
/// disables the endpoint once it has failed for `disable_after`.
async fn record_failure(
    s: &DeliveryShared,
    delivery: &ClaimedDelivery,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    s.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
    let attempt_no = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
    let unit: f64 = rand::thread_rng().gen();
    let wait = retry_after(&s.schedule, attempt_no, unit);
    if wait.is_none() {
        s.stats.given_up.fetch_add(1, Ordering::Relaxed);
    }
    let wait_ms = wait.map(|w| w.as_secs_f64() * 1000.0);
    let Some(failing_since) =
        store::record_failure(&s.pool, delivery, &outcome.record, wait_ms).await?
    else {
        return Ok(());
    };
    if Utc::now() - failing_since >= s.disable_after {
        let reason = format!(
            "every delivery failed since {} (last: {})",
            failing_since.to_rfc3339(),
            outcome.summary()
        );
        if store::disable_endpoint(&s.pool, delivery.endpoint_id, &reason).await? {
            s.stats.endpoints_disabled.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(endpoint = %delivery.endpoint_id, %reason, "webhook endpoint disabled");
        }
    }
    Ok(())
}

/// What one attempt came to.
struct Outcome {
    succeeded: bool,
    record: AttemptRecord,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Self {
            succeeded: false,
            record: AttemptRecord {
                status_code: None,
                response: None,
                error: Some(error),
            },
        }
    }

    fn summary(&self) -> String {
        match (&self.record.status_code, &self.record.error) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "no answer".into(),
        }
    }
}

/// POSTs one delivery: a 2xx is success; anything else, a timeout, or a
/// refused target is a failure.
async fn attempt(s: &DeliveryShared, d: &ClaimedDelivery) -> Outcome {
    let url = match url::Url::parse(&d.url) {
        Ok(url) => url,
        Err(e) => return Outcome::failed(format!("invalid URL: {e}")),
    };
    // Settings may have changed since the endpoint was saved.
    if let Err(e) = check_url(&url, s.allow_loopback_http) {
        return Outcome::failed(format!("refused target: {e}"));
    }
    let mut keys = Vec::with_capacity(2);
    keys.extend(secret_key(&d.secret));
    keys.extend(d.previous_secret.as_deref().and_then(secret_key));
    let msg_id = d.event_id.to_string();
    let timestamp = Utc::now().timestamp();
    let signature = signature_header(&keys, &msg_id, timestamp, d.body.as_bytes());
    let sent = s
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::failed(describe(&e)),
    };
    let status = response.status();
    // Only the excerpt is kept, so only that much is read: a subscriber
    // streaming a huge answer costs no memory.
    let mut response = response;
    let mut body = Vec::new();
    while body.len() < s.excerpt_bytes {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) if status.is_success() => {
                // The status decided it; a body cut short does not matter.
                tracing::debug!(error = %e, "webhook answer body cut short");
                break;
            }
            Err(e) => return Outcome::failed(describe(&e)),
        }
    }
    Outcome {
        succeeded: status.is_success(),
        record: AttemptRecord {
            status_code: Some(i32::from(status.as_u16())),
            response: Some(excerpt(&body, s.excerpt_bytes)),
            error: None,
        },
    }
}

/// A failed request in a line, with its cause (the resolver's refusal of a
/// private address shows up here).
fn describe(e: &http::Error) -> String {
    use std::error::Error as _;
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}

//! Settings of what Emporium tells the world outside: the event relays
//! (`[events]`) and webhook deliveries (`[webhooks]`).

use serde::Deserialize;

/// The public event outboxes and their relays.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EventsSettings {
    /// CloudEvents `source` prefix; each domain's events carry
    /// `<source>/<domain>`.
    pub source: String,
    /// How often the relays look for new events in the outboxes.
    pub relay_interval_ms: u64,
    /// Most events one relay pass takes from one domain.
    pub relay_batch: i64,
    /// Events every sink has taken are deleted after this many days.
    pub retention_days: u32,
    /// RabbitMQ URL (`amqp://user:pass@host:5672/%2f`); empty: no AMQP relay.
    pub amqp_url: String,
    /// The durable topic exchange events are published to.
    pub exchange: String,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            source: "/emporium".into(),
            relay_interval_ms: 250,
            relay_batch: 500,
            retention_days: 7,
            amqp_url: String::new(),
            exchange: "emporium.events".into(),
        }
    }
}

/// Webhook deliveries to subscribers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Delivery workers per instance.
    pub workers: usize,
    /// Deliveries a worker claims at once and sends side by side (so up
    /// to `workers × claim_batch` requests are in flight); their outcomes
    /// are recorded together.
    pub claim_batch: i64,
    /// A subscriber slower than this to answer counts as a failure.
    pub timeout_ms: u64,
    /// Waits after each failed attempt, in milliseconds (jittered ±20 %);
    /// after the last one the delivery is `failed`. The default spreads
    /// eight attempts over about 28 hours, as Standard Webhooks senders do.
    pub retry_schedule_ms: Vec<u64>,
    /// An endpoint whose deliveries have failed without a success for this
    /// long is disabled (and says why).
    pub disable_after_hours: f64,
    /// A claimed delivery belongs to its worker this long.
    pub lease_secs: u64,
    /// Idle workers look for due deliveries this often (new deliveries
    /// wake them at once).
    pub poll_interval_ms: u64,
    /// Allows `http://` targets on loopback addresses (development and
    /// tests). Production refuses it: targets must be `https` and resolve
    /// to public addresses.
    pub allow_loopback_http: bool,
    /// Bytes of a subscriber's response kept for the deliveries log.
    pub response_excerpt_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            claim_batch: 8,
            timeout_ms: 10_000,
            retry_schedule_ms: vec![
                5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
            ],
            disable_after_hours: 120.0,
            lease_secs: 60,
            poll_interval_ms: 1_000,
            allow_loopback_http: false,
            response_excerpt_bytes: 1024,
        }
    }
}

//! Prometheus metrics, one registry per instance.
//!
//! The `metrics` facade's macros record at the call site, into this
//! instance's recorder (several instances share a process in the tests, so
//! no global recorder is installed). Figures the runtime already keeps (actor
//! mailboxes, caches, pools, the payment queue) are copied in at scrape time
//! from those same sources, so `/metrics` and the admin report cannot
//! disagree; only latencies are recorded as they happen, into histograms.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Histogram buckets for every `_seconds` histogram: 0.5 ms to 10 s, about
/// ×2.5 apart, so both a cached read and a slow payment have resolution.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are folded so that unscraped samples do not pile up.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The two series one kind of HTTP request moves.
#[derive(Clone)]
struct HttpSeries {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// One instance's metrics registry and its Prometheus text rendering.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Handles by (method, route template, status class), so a request
    /// costs one map lookup rather than building and hashing label sets
    /// in the registry twice (it showed in the `/healthz` profile).
    http: RwLock<HashMap<(&'static str, String, &'static str), HttpSeries>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every metric described.
    pub fn new() -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .expect("constant buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Arc::new(Self {
            recorder,
            handle,
            http: RwLock::default(),
        });
        metrics.scope(describe_all);
        metrics
    }

    /// Runs `record` with this instance's recorder as the macros' target.
    pub fn scope<T>(&self, record: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, record)
    }

    /// Counts one HTTP request and its duration. The label set is bounded:
    /// `method` is one of a fixed set, `route` a template (or
    /// `unmatched`), `status` a class.
    pub fn record_http(
        &self,
        method: &'static str,
        route: String,
        status: &'static str,
        seconds: f64,
    ) {
        let key = (method, route, status);
        let known = self
            .http
            .read()
            .ok()
            .and_then(|series| series.get(&key).cloned());
        let series = match known {
            Some(series) => series,
            None => {
                let labels = [
                    ("method", key.0.to_owned()),
                    ("route", key.1.clone()),
                    ("status", status.to_owned()),
                ];
                let series = self.scope(|| HttpSeries {
                    requests: metrics::counter!("emporium_http_requests_total", &labels),
                    duration: metrics::histogram!(
                        "emporium_http_request_duration_seconds",
                        &labels
                    ),
                });
                if let Ok(mut all) = self.http.write() {
                    all.insert(key, series.clone());
                }
                series
            }
        };
        series.requests.increment(1);
        series.duration.record(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; run every
    /// [`UPKEEP_EVERY`] so memory stays bounded between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Names, units and help of every metric, in one place.
fn describe_all() {
    describe_gauge!(
        "emporium_actor_mailbox_depth",
        "Messages accepted by an actor and not yet answered."
    );
    describe_gauge!(
        "emporium_actor_mailbox_capacity",
        "Most messages an actor accepts at once; beyond it calls get 503."
    );
    describe_gauge!(
        "emporium_actor_in_flight",
        "Handlers of an actor running now."
    );
    describe_counter!(
        "emporium_actor_messages_handled_total",
        "Messages an actor handled to completion."
    );
    describe_counter!(
        "emporium_actor_errors_total",
        "Handled messages whose reply was an error (panics included)."
    );
    describe_counter!("emporium_actor_panics_total", "Handlers that panicked.");
    describe_counter!(
        "emporium_mails_total",
        "Mail send attempts by outcome: sent, retried, failed (for good)."
    );
    describe_counter!(
        "emporium_actor_restarts_total",
        "Supervisor restarts of an actor."
    );
    describe_counter!(
        "emporium_actor_rejected_total",
        "Calls refused at once because the actor's mailbox was full."
    );
    describe_counter!(
        "emporium_actor_timeouts_total",
        "Calls that gave up waiting for an actor's reply."
    );
    describe_histogram!(
        "emporium_actor_handler_duration_seconds",
        Unit::Seconds,
        "Time from a handler's start to its reply."
    );
    describe_counter!(
        "emporium_http_requests_total",
        "HTTP requests answered, by method, route template and status class."
    );
    describe_histogram!(
        "emporium_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status class."
    );
    describe_gauge!(
        "emporium_db_pool_connections",
        "Open connections of a domain's PostgreSQL pool."
    );
    describe_gauge!(
        "emporium_db_pool_idle_connections",
        "Idle connections of a domain's PostgreSQL pool."
    );
    describe_gauge!(
        "emporium_db_pool_max_connections",
        "Most connections a domain's PostgreSQL pool opens."
    );
    describe_gauge!(
        "emporium_redis_pool_connections",
        "Open connections of a Redis pool."
    );
    describe_gauge!(
        "emporium_redis_pool_idle_connections",
        "Idle connections of a Redis pool."
    );
    describe_counter!(
        "emporium_redis_pool_waits_total",
        "Connection requests to a Redis pool that had to wait."
    );
    describe_counter!(
        "emporium_redis_pool_timeouts_total",
        "Connection requests to a Redis pool that timed out."
    );
    describe_counter!(
        "emporium_cache_lookups_total",
        "Catalog cache lookups by result: hit, miss, bypass (cache not trusted) or error."
    );
    describe_counter!(
        "emporium_read_view_lookups_total",
        "In-process read view lookups by view and result."
    );
    describe_gauge!(
        "emporium_read_view_serving",
        "1 while a read view holds its lease and serves, else 0."
    );
    describe_gauge!("emporium_read_view_entries", "Entries held by a read view.");
    describe_gauge!(
        "emporium_read_view_bytes",
        Unit::Bytes,
        "Bytes held by a read view (keys and values)."
    );
    describe_gauge!(
        "emporium_read_view_max_bytes",
        Unit::Bytes,
        "A read view's byte budget (`*.read_view_max_bytes`)."
    );
    describe_counter!(
        "emporium_read_view_evictions_total",
        "Entries a read view dropped to stay within its budget, least recently read first."
    );
    describe_counter!(
        "emporium_read_view_invalidations_total",
        "Invalidations a read view sent (its instance's writes) and received (other instances')."
    );
    describe_counter!(
        "emporium_rate_limit_decisions_total",
        "Rate limiter decisions: allowed, limited, or failed_open (Redis unreachable)."
    );
    describe_gauge!(
        "emporium_payment_queue_depth",
        "Payment jobs not yet done (due, waiting to retry, or running)."
    );
    describe_gauge!(
        "emporium_payment_queue_ready",
        "Payment jobs due now and not claimed."
    );
    describe_gauge!(
        "emporium_payment_oldest_job_age_seconds",
        Unit::Seconds,
        "Age of the oldest payment job not yet done."
    );
    describe_gauge!(
        "emporium_payment_outbox_pending",
        "Payment outcomes not yet acknowledged by orders."
    );
    describe_gauge!(
        "emporium_payment_outbox_refused",
        "Payment outcomes orders refused, kept for an operator to reconcile (alert when above 0)."
    );
    describe_gauge!(
        "emporium_payment_workers",
        "Payment workers in this instance's pool."
    );
    describe_gauge!(
        "emporium_payment_workers_busy",
        "Payment workers running a job now."
    );
    describe_counter!(
        "emporium_payment_attempts_total",
        "Provider calls made by this instance's payment workers."
    );
    describe_counter!(
        "emporium_payment_outcomes_total",
        "Payment job outcomes: succeeded, failed, retried, refunded, lease_lost."
    );
    describe_counter!(
        "emporium_webhook_deliveries_total",
        "Webhook delivery attempts by this instance: succeeded (a 2xx), failed_attempt (retried later), given_up (schedule spent)."
    );
    describe_counter!(
        "emporium_webhook_endpoints_disabled_total",
        "Webhook endpoints this instance disabled after failing for webhooks.disable_after_hours."
    );
    describe_gauge!(
        "emporium_recommender_model_version",
        "Build number of the live recommendation model (0: none yet)."
    );
    describe_gauge!(
        "emporium_recommender_model_built_timestamp_seconds",
        Unit::Seconds,
        "When the live recommendation model was built (Unix time)."
    );
    describe_gauge!(
        "emporium_recommender_model_build_duration_seconds",
        Unit::Seconds,
        "How long the live recommendation model took to build."
    );
    describe_counter!(
        "emporium_recommender_builds_total",
        "Recommendation model builds finished (promoted or not)."
    );
    describe_counter!(
        "emporium_events_relayed_total",
        "Public events a relay handed on and acknowledged to their outbox, by sink."
    );
    describe_gauge!(
        "emporium_events_relay_connected",
        "1 while a relay is connected to its sink (the RabbitMQ broker), else 0."
    );
    describe_counter!(
        "emporium_events_relay_failures_total",
        "Relay failures by sink and reason: connect, connection_lost, nacked, returned, source."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_renders_only_its_own_figures() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.scope(|| metrics::counter!("emporium_http_requests_total", "route" => "/x").increment(3));
        assert!(a
            .render()
            .contains("emporium_http_requests_total{route=\"/x\"} 3"));
        assert!(!b.render().contains("route=\"/x\""));
    }

    #[test]
    fn seconds_histograms_have_buckets() {
        let m = Metrics::new();
        m.scope(|| {
            metrics::histogram!("emporium_http_request_duration_seconds").record(0.003);
        });
        let text = m.render();
        assert!(text.contains("emporium_http_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("emporium_http_request_duration_seconds_count 1"));
    }
}

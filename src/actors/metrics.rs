//! Per-actor mailbox instrumentation, shared between the edge (which admits
//! messages) and the actor (which handles them).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram tracks exactly (60 s, in microseconds).
const MAX_TRACKED_MICROS: u64 = 60_000_000;

/// Counters and a latency histogram for one actor.
#[derive(Debug)]
pub struct ActorMetrics {
    name: &'static str,
    capacity: usize,
    queued: AtomicUsize,
    handled: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    restarts: AtomicU64,
    rejected_full: AtomicU64,
    timeouts: AtomicU64,
    in_flight: AtomicUsize,
    latency: Mutex<Histogram<u64>>,
    /// The same latencies, in seconds, for Prometheus.
    exported_latency: metrics::Histogram,
}

/// A point-in-time copy of one actor's metrics, as served by
/// `GET /api/v1/admin/actors/`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActorMetricsSnapshot {
    /// Actor name, e.g. `auth`.
    pub name: &'static str,
    /// Messages accepted and not yet answered (waiting or being handled).
    pub queued: usize,
    /// Handlers running now (the rest of `queued` waits in the mailbox).
    pub in_flight: usize,
    /// Most messages that may be queued at once.
    pub capacity: usize,
    /// Messages handled to completion.
    pub handled: u64,
    /// Handled messages whose reply was an error (panics included).
    pub errors: u64,
    /// Handlers that panicked.
    pub panics: u64,
    /// Times the supervisor restarted the actor.
    pub restarts: u64,
    /// Calls refused at once because the mailbox was full.
    pub rejected_full: u64,
    /// Calls that gave up waiting for a reply.
    pub timeouts: u64,
    /// Handler latency percentiles, in microseconds.
    pub latency_us: LatencySnapshot,
}

/// Handler latency summary, in microseconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LatencySnapshot {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl ActorMetrics {
    /// Metrics for an actor whose mailbox holds `capacity` messages.
    pub fn new(name: &'static str, capacity: usize) -> Arc<Self> {
        Self::with_exported_latency(name, capacity, metrics::Histogram::noop())
    }

    /// Metrics whose handler latencies also go to `telemetry`'s
    /// `emporium_actor_handler_duration_seconds{actor}`.
    pub fn exported(
        name: &'static str,
        capacity: usize,
        telemetry: &crate::telemetry::metrics::Metrics,
    ) -> Arc<Self> {
        let exported = telemetry.scope(
            || metrics::histogram!("emporium_actor_handler_duration_seconds", "actor" => name),
        );
        Self::with_exported_latency(name, capacity, exported)
    }

    fn with_exported_latency(
        name: &'static str,
        capacity: usize,
        exported_latency: metrics::Histogram,
    ) -> Arc<Self> {
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 2)
            .expect("constant histogram bounds are valid");
        Arc::new(Self {
            name,
            capacity,
            queued: AtomicUsize::new(0),
            handled: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            rejected_full: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            latency: Mutex::new(histogram),
            exported_latency,
        })
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Claims a mailbox slot, or `None` when all `capacity` are taken. The
    /// slot is given back when the returned guard drops.
    pub fn try_admit(self: &Arc<Self>) -> Option<MailboxSlot> {
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Some(MailboxSlot(Arc::clone(self)))
        } else {
            self.rejected_full.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Records one handled message.
    pub fn record_handled(&self, elapsed: Duration, ok: bool) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.exported_latency.record(elapsed.as_secs_f64());
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut histogram) = self.latency.lock() {
            histogram.saturating_record(micros.clamp(1, MAX_TRACKED_MICROS));
        }
    }

    /// Records a panicking handler (also counted as handled with an error).
    pub fn record_panic(&self, elapsed: Duration) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        self.record_handled(elapsed, false);
    }

    /// Counts a handler as running until the returned guard drops (also
    /// when its future is dropped unfinished).
    pub fn start_handler(self: &Arc<Self>) -> HandlerRunning {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        HandlerRunning(Arc::clone(self))
    }

    /// Records a supervisor restart.
    pub fn record_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a caller that stopped waiting.
    pub fn record_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> ActorMetricsSnapshot {
        let latency_us = match self.latency.lock() {
            Ok(h) => LatencySnapshot {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            },
            Err(_) => LatencySnapshot {
                p50: 0,
                p90: 0,
                p99: 0,
                max: 0,
            },
        };
        ActorMetricsSnapshot {
            name: self.name,
            queued: self.queued.load(Ordering::Acquire),
            in_flight: self.in_flight.load(Ordering::Acquire),
            capacity: self.capacity,
            handled: self.handled.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            rejected_full: self.rejected_full.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            latency_us,
        }
    }
}

/// One occupied mailbox slot; dropping it frees the slot.
#[derive(Debug)]
pub struct MailboxSlot(Arc<ActorMetrics>);

impl Drop for MailboxSlot {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One running handler; dropping it ends the count.
#[derive(Debug)]
pub struct HandlerRunning(Arc<ActorMetrics>);

impl Drop for HandlerRunning {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_capacity_and_slots_return_on_drop() {
        let m = ActorMetrics::new("t", 2);
        let a = m.try_admit().expect("first");
        let _b = m.try_admit().expect("second");
        assert!(m.try_admit().is_none());
        assert_eq!(m.snapshot().queued, 2);
        assert_eq!(m.snapshot().rejected_full, 1);
        drop(a);
        assert!(m.try_admit().is_some());
    }

    #[test]
    fn latency_and_outcomes_are_counted() {
        let m = ActorMetrics::new("t", 1);
        m.record_handled(Duration::from_millis(2), true);
        m.record_handled(Duration::from_millis(4), false);
        m.record_panic(Duration::from_millis(8));
        m.record_restart();
        let s = m.snapshot();
        assert_eq!((s.handled, s.errors, s.panics, s.restarts), (3, 2, 1, 1));
        assert!(s.latency_us.p50 >= 2000 && s.latency_us.max >= 8000);
    }
}

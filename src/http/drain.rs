//! The drain switch. When the instance is told to stop, responses ask
//! keep-alive clients to close their connection (`Connection: close`) and
//! `/readyz` answers 503, so clients reconnect to another replica instead
//! of reusing a connection the server is about to close under them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by the edge's middleware, `/readyz` and `EdgeActor`, which
/// throws it on SIGTERM before the listener closes.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// From now on, every response closes its connection.
    pub fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the instance is stopping.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_the_drain_begin() {
        let drain = Drain::default();
        let seen_by_middleware = drain.clone();
        assert!(!seen_by_middleware.is_draining());
        drain.begin();
        assert!(seen_by_middleware.is_draining());
    }
}

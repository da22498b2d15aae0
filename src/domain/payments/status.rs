//! The payment status machine, decided here and applied by the store as one
//! guarded write.
//!
//! ```text
//! processing ──▶ succeeded ──▶ refund_pending ──▶ refunded
//!     │              ▲               │
//!     ▼              └───────────────┘ (refund failed, or denied by orders)
//!   failed
//! ```

use serde::{Deserialize, Serialize};

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Processing,
    Succeeded,
    Failed,
    RefundPending,
    Refunded,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// What happens to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentEvent {
    /// The provider charged the card.
    ChargeSucceeded,
    /// The provider declined, or transient failures ran out of attempts.
    ChargeFailed,
    /// A refund was asked for (by an admin, or because the order could not
    /// take the payment).
    RefundRequested,
    /// The provider refunded the charge.
    RefundSucceeded,
    /// The provider refused the refund; the charge stands.
    RefundFailed,
    /// The orders service would not grant the refund (the order shipped
    /// first); the provider was never asked and the charge stands.
    RefundDenied,
    /// The provider refunded on its own (a webhook), from any charged state.
    RefundedByProvider,
}

impl PaymentEvent {
    /// The event's name in errors and timelines.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentEvent::ChargeSucceeded => "charge_succeeded",
            PaymentEvent::ChargeFailed => "charge_failed",
            PaymentEvent::RefundRequested => "refund_requested",
            PaymentEvent::RefundSucceeded => "refund_succeeded",
            PaymentEvent::RefundFailed => "refund_failed",
            PaymentEvent::RefundDenied => "refund_denied",
            PaymentEvent::RefundedByProvider => "refunded_by_provider",
        }
    }
}

/// An event that the payment's status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {} to a payment that is {}", .event.as_str(), .current.as_str())]
pub struct InvalidPaymentTransition {
    pub event: PaymentEvent,
    pub current: PaymentStatus,
}

/// The status after `event` on a payment in `current`. Nothing ever moves a
/// payment backwards, so a late or repeated event is refused, never applied.
pub fn next_status(
    current: PaymentStatus,
    event: PaymentEvent,
) -> Result<PaymentStatus, InvalidPaymentTransition> {
    use PaymentEvent::*;
    use PaymentStatus::*;
    match (current, event) {
        (Processing, ChargeSucceeded) => Ok(Succeeded),
        (Processing, ChargeFailed) => Ok(Failed),
        (Succeeded, RefundRequested) => Ok(RefundPending),
        (RefundPending, RefundSucceeded) => Ok(Refunded),
        (RefundPending, RefundFailed | RefundDenied) => Ok(Succeeded),
        (Succeeded | RefundPending, RefundedByProvider) => Ok(Refunded),
        _ => Err(InvalidPaymentTransition { event, current }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentEvent::*;
    use PaymentStatus::*;

    const EVENTS: [PaymentEvent; 7] = [
        ChargeSucceeded,
        ChargeFailed,
        RefundRequested,
        RefundSucceeded,
        RefundFailed,
        RefundDenied,
        RefundedByProvider,
    ];

    #[test]
    fn every_status_and_event_has_one_answer() {
        let allowed = [
            (Processing, ChargeSucceeded, Succeeded),
            (Processing, ChargeFailed, Failed),
            (Succeeded, RefundRequested, RefundPending),
            (RefundPending, RefundSucceeded, Refunded),
            (RefundPending, RefundFailed, Succeeded),
            (RefundPending, RefundDenied, Succeeded),
            (Succeeded, RefundedByProvider, Refunded),
            (RefundPending, RefundedByProvider, Refunded),
        ];
        for status in PaymentStatus::ALL {
            for event in EVENTS {
                let expected = allowed
                    .iter()
                    .find(|(s, e, _)| *s == status && *e == event)
                    .map(|(_, _, next)| *next);
                assert_eq!(
                    next_status(status, event).ok(),
                    expected,
                    "{} on {}",
                    event.as_str(),
                    status.as_str()
                );
            }
        }
    }

    #[test]
    fn final_states_take_nothing_and_names_round_trip() {
        for event in EVENTS {
            assert!(next_status(Failed, event).is_err());
            assert!(next_status(Refunded, event).is_err());
        }
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("paid"), None);
    }

    #[test]
    fn a_late_success_cannot_undo_a_refund() {
        assert_eq!(
            next_status(Refunded, ChargeSucceeded),
            Err(InvalidPaymentTransition {
                event: ChargeSucceeded,
                current: Refunded
            })
        );
    }
}

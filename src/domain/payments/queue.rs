//! What the payment pool queues and what the orders domain must hear of a
//! payment, as typed values: the kinds of a payment job and of an outbox
//! entry. Stored as text (`store::text_enum`), so a kind is never misspelt
//! on the way in nor guessed on the way out.

use serde::Serialize;

/// A provider call the pool makes for a payment (a `payment_jobs` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Charge the card for the order's total.
    Charge,
    /// Give the captured amount back.
    Refund,
}

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Charge => "charge",
            JobKind::Refund => "refund",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "charge" => Some(JobKind::Charge),
            "refund" => Some(JobKind::Refund),
            _ => None,
        }
    }
}

/// What the orders domain must hear of a payment (a `payment_outbox` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentNotice {
    /// The order is paid.
    PaymentSucceeded,
    /// A refund asks the order for its grant.
    RefundStarted,
    /// The money went back.
    RefundSucceeded,
    /// The refund did not go through: the order stays paid.
    RefundFailed,
    /// A partial refund went through (the entry names it).
    PartialRefundSucceeded,
}

impl PaymentNotice {
    /// Every notice, in the order a payment can send them.
    pub const ALL: [PaymentNotice; 5] = [
        PaymentNotice::PaymentSucceeded,
        PaymentNotice::RefundStarted,
        PaymentNotice::RefundSucceeded,
        PaymentNotice::RefundFailed,
        PaymentNotice::PartialRefundSucceeded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentNotice::PaymentSucceeded => "payment_succeeded",
            PaymentNotice::RefundStarted => "refund_started",
            PaymentNotice::RefundSucceeded => "refund_succeeded",
            PaymentNotice::RefundFailed => "refund_failed",
            PaymentNotice::PartialRefundSucceeded => "partial_refund_succeeded",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written() {
        for kind in [JobKind::Charge, JobKind::Refund] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        for notice in PaymentNotice::ALL {
            assert_eq!(PaymentNotice::parse(notice.as_str()), Some(notice));
            assert_eq!(serde_json::to_value(notice).expect("json"), notice.as_str());
        }
        assert_eq!(JobKind::parse("Charge"), None);
        assert_eq!(PaymentNotice::parse("refund"), None);
    }
}

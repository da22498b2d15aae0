//! The order status machine. Every transition, and who may make it, is
//! decided here; the store then applies it as one guarded write.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Expired,
    RefundPending,
    Refunded,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::RefundPending,
        OrderStatus::Refunded,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::RefundPending => "refund_pending",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// What someone wants to do to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pay,
    Cancel,
    Ship,
    Deliver,
    Expire,
    RequestRefund,
    CompleteRefund,
    /// The provider refused the refund: the order is paid again.
    AbortRefund,
}

impl Action {
    /// The action's name in errors and history.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Cancel => "cancel",
            Action::Ship => "ship",
            Action::Deliver => "deliver",
            Action::Expire => "expire",
            Action::RequestRefund => "request_refund",
            Action::CompleteRefund => "complete_refund",
            Action::AbortRefund => "abort_refund",
        }
    }
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The customer who owns the order.
    Owner,
    /// Back-office staff.
    Admin,
    /// The payments service.
    Payments,
    /// The expiry sweep.
    System,
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The action is never allowed to this actor.
    #[error("not allowed to {}", .0.as_str())]
    NotAllowed(Action),
    /// The action is not possible in the current status.
    #[error("cannot {} an order that is {}", .action.as_str(), .current.as_str())]
    InvalidState {
        action: Action,
        current: OrderStatus,
    },
}

/// The status after `action` by `actor` on an order in `current`.
pub fn transition(
    current: OrderStatus,
    action: Action,
    actor: Actor,
) -> Result<OrderStatus, TransitionError> {
    use Action::*;
    use Actor::*;
    use OrderStatus::*;
    let permitted = match action {
        Pay | RequestRefund | CompleteRefund | AbortRefund => actor == Payments,
        Cancel => matches!(actor, Owner | Admin),
        Ship | Deliver => actor == Admin,
        Expire => actor == System,
    };
    if !permitted {
        return Err(TransitionError::NotAllowed(action));
    }
    let next = match (current, action) {
        (Pending, Pay) => Paid,
        (Pending, Cancel) => Cancelled,
        (Pending, Expire) => Expired,
        (Paid, Ship) => Shipped,
        (Shipped, Deliver) => Delivered,
        (Paid, RequestRefund) => RefundPending,
        (RefundPending, CompleteRefund) => Refunded,
        (RefundPending, AbortRefund) => Paid,
        _ => return Err(TransitionError::InvalidState { action, current }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 8] = [
        Action::Pay,
        Action::Cancel,
        Action::Ship,
        Action::Deliver,
        Action::Expire,
        Action::RequestRefund,
        Action::CompleteRefund,
        Action::AbortRefund,
    ];
    const ACTORS: [Actor; 4] = [Actor::Owner, Actor::Admin, Actor::Payments, Actor::System];

    /// The whole table of allowed transitions: (from, action, actor, to).
    const ALLOWED: [(OrderStatus, Action, Actor, OrderStatus); 9] = [
        (
            OrderStatus::Pending,
            Action::Pay,
            Actor::Payments,
            OrderStatus::Paid,
        ),
        (
            OrderStatus::Pending,
            Action::Cancel,
            Actor::Owner,
            OrderStatus::Cancelled,
        ),
        (
            OrderStatus::Pending,
            Action::Cancel,
            Actor::Admin,
            OrderStatus::Cancelled,
        ),
        (
            OrderStatus::Pending,
            Action::Expire,
            Actor::System,
            OrderStatus::Expired,
        ),
        (
            OrderStatus::Paid,
            Action::Ship,
            Actor::Admin,
            OrderStatus::Shipped,
        ),
        (
            OrderStatus::Shipped,
            Action::Deliver,
            Actor::Admin,
            OrderStatus::Delivered,
        ),
        (
            OrderStatus::Paid,
            Action::RequestRefund,
            Actor::Payments,
            OrderStatus::RefundPending,
        ),
        (
            OrderStatus::RefundPending,
            Action::CompleteRefund,
            Actor::Payments,
            OrderStatus::Refunded,
        ),
        (
            OrderStatus::RefundPending,
            Action::AbortRefund,
            Actor::Payments,
            OrderStatus::Paid,
        ),
    ];

    #[test]
    fn exactly_the_listed_transitions_are_allowed() {
        for from in OrderStatus::ALL {
            for action in ACTIONS {
                for actor in ACTORS {
                    let expected = ALLOWED
                        .iter()
                        .find(|(f, a, who, _)| *f == from && *a == action && *who == actor)
                        .map(|row| row.3);
                    match (transition(from, action, actor), expected) {
                        (Ok(to), Some(want)) => assert_eq!(to, want),
                        (Err(_), None) => {}
                        (got, want) => {
                            panic!("{from:?} {action:?} by {actor:?}: got {got:?}, want {want:?}")
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            transition(OrderStatus::Pending, Action::Ship, Actor::Owner),
            Err(TransitionError::NotAllowed(Action::Ship))
        );
        let err =
            transition(OrderStatus::Shipped, Action::Cancel, Actor::Admin).expect_err("refused");
        assert_eq!(err.to_string(), "cannot cancel an order that is shipped");
    }

    #[test]
    fn terminal_states_allow_nothing() {
        for terminal in [
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
            OrderStatus::Expired,
            OrderStatus::Refunded,
        ] {
            for action in ACTIONS {
                for actor in ACTORS {
                    assert!(transition(terminal, action, actor).is_err());
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("lost"), None);
    }
}

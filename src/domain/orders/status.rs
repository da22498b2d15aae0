//! The order status machine. Every transition, and who may make it, is
//! decided here; the store then applies it as one guarded write.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    /// Some units have shipped, not all.
    PartiallyFulfilled,
    /// Every unit has shipped.
    Fulfilled,
    /// Every unit has shipped and every parcel arrived.
    Delivered,
    Cancelled,
    Expired,
    RefundPending,
    Refunded,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::PartiallyFulfilled,
        OrderStatus::Fulfilled,
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
            OrderStatus::PartiallyFulfilled => "partially_fulfilled",
            OrderStatus::Fulfilled => "fulfilled",
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
    /// Ship whatever is not shipped yet (the whole-order shortcut), or
    /// create and ship parcels.
    Ship,
    /// Deliver every shipped parcel (the whole-order shortcut), or one.
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
        // The whole-order shortcuts: everything left ships, or every
        // parcel arrives. Parcel by parcel, `fulfilment_status` decides.
        (Paid | PartiallyFulfilled, Ship) => Fulfilled,
        (Fulfilled, Deliver) => Delivered,
        (Paid, RequestRefund) => RefundPending,
        (RefundPending, CompleteRefund) => Refunded,
        (RefundPending, AbortRefund) => Paid,
        _ => return Err(TransitionError::InvalidState { action, current }),
    };
    Ok(next)
}

/// Whether parcels may be created, shipped (`Ship`) or delivered
/// (`Deliver`) on an order in `current` by `actor`. Creating and shipping
/// needs units left to ship and money kept (not `refund_pending`);
/// delivering needs something shipped.
pub fn check_fulfilment(
    current: OrderStatus,
    action: Action,
    actor: Actor,
) -> Result<(), TransitionError> {
    use OrderStatus::*;
    if actor != Actor::Admin || !matches!(action, Action::Ship | Action::Deliver) {
        return Err(TransitionError::NotAllowed(action));
    }
    let open = match action {
        Action::Ship => matches!(current, Paid | PartiallyFulfilled),
        _ => matches!(current, PartiallyFulfilled | Fulfilled),
    };
    if open {
        Ok(())
    } else {
        Err(TransitionError::InvalidState { action, current })
    }
}

/// How much of an order's money has gone back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Nothing refunded.
    None,
    /// Some of the total refunded.
    PartiallyRefunded,
    /// All of it.
    Refunded,
}

/// The refund state of an order of `total` with `refunded` given back.
pub fn refund_state(refunded: i64, total: i64) -> RefundState {
    if refunded <= 0 {
        RefundState::None
    } else if refunded < total {
        RefundState::PartiallyRefunded
    } else {
        RefundState::Refunded
    }
}

/// How far an order's units have gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// Units ordered.
    pub ordered: i64,
    /// Units in shipped or delivered parcels.
    pub shipped: i64,
    /// Whether every parcel that shipped has been delivered.
    pub all_delivered: bool,
}

/// The status an order whose parcels stand at `progress` has: `paid`
/// until a unit ships, `partially_fulfilled` until all have, `fulfilled`,
/// and `delivered` once every parcel has arrived.
pub fn fulfilment_status(progress: Shipped) -> OrderStatus {
    if progress.shipped <= 0 {
        OrderStatus::Paid
    } else if progress.shipped < progress.ordered {
        OrderStatus::PartiallyFulfilled
    } else if progress.all_delivered {
        OrderStatus::Delivered
    } else {
        OrderStatus::Fulfilled
    }
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
    const ALLOWED: [(OrderStatus, Action, Actor, OrderStatus); 10] = [
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
            OrderStatus::Fulfilled,
        ),
        (
            OrderStatus::PartiallyFulfilled,
            Action::Ship,
            Actor::Admin,
            OrderStatus::Fulfilled,
        ),
        (
            OrderStatus::Fulfilled,
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
            transition(OrderStatus::Fulfilled, Action::Cancel, Actor::Admin).expect_err("refused");
        assert_eq!(err.to_string(), "cannot cancel an order that is fulfilled");
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
    fn parcels_are_made_and_shipped_while_units_are_left_and_delivered_once_shipped() {
        use OrderStatus::*;
        for status in OrderStatus::ALL {
            let ship = check_fulfilment(status, Action::Ship, Actor::Admin).is_ok();
            let deliver = check_fulfilment(status, Action::Deliver, Actor::Admin).is_ok();
            assert_eq!(
                ship,
                matches!(status, Paid | PartiallyFulfilled),
                "{status:?}"
            );
            assert_eq!(
                deliver,
                matches!(status, PartiallyFulfilled | Fulfilled),
                "{status:?}"
            );
            for actor in [Actor::Owner, Actor::Payments, Actor::System] {
                assert_eq!(
                    check_fulfilment(status, Action::Ship, actor),
                    Err(TransitionError::NotAllowed(Action::Ship))
                );
            }
            assert!(check_fulfilment(status, Action::Cancel, Actor::Admin).is_err());
        }
    }

    #[test]
    fn the_status_follows_the_shipped_units() {
        let at = |shipped, all_delivered| {
            fulfilment_status(Shipped {
                ordered: 5,
                shipped,
                all_delivered,
            })
        };
        assert_eq!(at(0, false), OrderStatus::Paid);
        assert_eq!(at(0, true), OrderStatus::Paid);
        assert_eq!(at(2, false), OrderStatus::PartiallyFulfilled);
        assert_eq!(at(2, true), OrderStatus::PartiallyFulfilled);
        assert_eq!(at(5, false), OrderStatus::Fulfilled);
        assert_eq!(at(5, true), OrderStatus::Delivered);
    }

    #[test]
    fn the_refund_state_follows_the_refunded_amount() {
        assert_eq!(refund_state(0, 1000), RefundState::None);
        assert_eq!(refund_state(1, 1000), RefundState::PartiallyRefunded);
        assert_eq!(refund_state(999, 1000), RefundState::PartiallyRefunded);
        assert_eq!(refund_state(1000, 1000), RefundState::Refunded);
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("lost"), None);
    }
}

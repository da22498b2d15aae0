//! Returns: the status machine of a return, the window a customer may ask
//! in, and the checks that never more is returned than was delivered and
//! never more restocked than was received. No I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a return is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// The customer asked.
    Requested,
    /// The shop agreed; the customer sends the goods.
    Approved,
    /// The shop refused (with a reason).
    Rejected,
    /// The goods arrived; each line restocked or not.
    Received,
    /// The money went back.
    Refunded,
    /// Ended without a refund (withdrawn, or kept as it is).
    Closed,
}

impl ReturnStatus {
    /// Every status.
    pub const ALL: [ReturnStatus; 6] = [
        ReturnStatus::Requested,
        ReturnStatus::Approved,
        ReturnStatus::Rejected,
        ReturnStatus::Received,
        ReturnStatus::Refunded,
        ReturnStatus::Closed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Received => "received",
            ReturnStatus::Refunded => "refunded",
            ReturnStatus::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// What an admin does to a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnAction {
    Approve,
    Reject,
    Receive,
    Refund,
    Close,
}

impl ReturnAction {
    /// The action's name in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnAction::Approve => "approve",
            ReturnAction::Reject => "reject",
            ReturnAction::Receive => "receive",
            ReturnAction::Refund => "refund",
            ReturnAction::Close => "close",
        }
    }
}

/// Why a return request or change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnRefusal {
    /// The return's status does not allow the action.
    #[error("cannot {} a return that is {}", .action.as_str(), .current.as_str())]
    InvalidState {
        action: ReturnAction,
        current: ReturnStatus,
    },
    /// The window closed (or nothing was delivered yet).
    #[error("returns are accepted within {days} days of delivery")]
    WindowClosed { days: u32 },
    /// More units of a line than were delivered and not returned yet.
    #[error("line {line_id} has {left} delivered unit(s) left to return, not {requested}")]
    OverReturn {
        line_id: Uuid,
        requested: i64,
        left: i64,
    },
    /// More received than the return asked for, or a line it does not
    /// have.
    #[error("line {line_id}: {received} received of {requested} in the return")]
    OverReceipt {
        line_id: Uuid,
        requested: i64,
        received: i64,
    },
}

impl ReturnRefusal {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReturnRefusal::InvalidState { .. } => "invalid_transition",
            ReturnRefusal::WindowClosed { .. } => "return_window_closed",
            ReturnRefusal::OverReturn { .. } => "over_return",
            ReturnRefusal::OverReceipt { .. } => "over_receipt",
        }
    }
}

/// The status after `action` on a return in `current`.
pub fn transition(
    current: ReturnStatus,
    action: ReturnAction,
) -> Result<ReturnStatus, ReturnRefusal> {
    use ReturnAction as A;
    use ReturnStatus as S;
    match (current, action) {
        (S::Requested, A::Approve) => Ok(S::Approved),
        (S::Requested, A::Reject) => Ok(S::Rejected),
        (S::Approved, A::Receive) => Ok(S::Received),
        (S::Received, A::Refund) => Ok(S::Refunded),
        (S::Requested | S::Approved | S::Received, A::Close) => Ok(S::Closed),
        _ => Err(ReturnRefusal::InvalidState { action, current }),
    }
}

/// Whether a return asked `now` is within `days` of `delivered_at` (the
/// order's last delivery); never before anything was delivered.
pub fn window_open(delivered_at: Option<DateTime<Utc>>, now: DateTime<Utc>, days: u32) -> bool {
    delivered_at.is_some_and(|at| now <= at + Duration::days(i64::from(days)))
}

/// One order line as returns see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineDelivered {
    pub line_id: Uuid,
    /// Units in delivered parcels.
    pub delivered: i64,
    /// Units in returns not rejected or withdrawn.
    pub returned: i64,
}

/// Merges `requested` (line, units) per line and checks each against what
/// was delivered and is not in a return yet.
pub fn check_return(
    lines: &[LineDelivered],
    requested: &[(Uuid, i64)],
) -> Result<BTreeMap<Uuid, i64>, ReturnRefusal> {
    let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (line, units) in requested {
        *merged.entry(*line).or_default() += units;
    }
    for (line_id, wanted) in &merged {
        let left = lines
            .iter()
            .find(|l| l.line_id == *line_id)
            .map_or(0, |l| l.delivered - l.returned);
        if *wanted > left {
            return Err(ReturnRefusal::OverReturn {
                line_id: *line_id,
                requested: *wanted,
                left,
            });
        }
    }
    Ok(merged)
}

/// What arrived of one line, and how much of it goes back on a shelf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub line_id: Uuid,
    pub received: i64,
    pub restock: bool,
}

/// Checks a receipt against the return's lines (line, units asked): each
/// received count within what the line asked, each line once. Lines not
/// named arrived with nothing. Returns (line, received, restocked).
pub fn check_receipt(
    asked: &[(Uuid, i64)],
    receipt: &[Receipt],
) -> Result<Vec<(Uuid, i64, i64)>, ReturnRefusal> {
    let mut out = Vec::new();
    for (line_id, requested) in asked {
        let named: Vec<&Receipt> = receipt.iter().filter(|r| r.line_id == *line_id).collect();
        let received: i64 = named.iter().map(|r| r.received).sum();
        if received > *requested || named.len() > 1 {
            return Err(ReturnRefusal::OverReceipt {
                line_id: *line_id,
                requested: *requested,
                received,
            });
        }
        let restocked = if named.first().is_some_and(|r| r.restock) {
            received
        } else {
            0
        };
        out.push((*line_id, received, restocked));
    }
    if let Some(stray) = receipt
        .iter()
        .find(|r| !asked.iter().any(|(line, _)| *line == r.line_id))
    {
        return Err(ReturnRefusal::OverReceipt {
            line_id: stray.line_id,
            requested: 0,
            received: stray.received,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ACTIONS: [ReturnAction; 5] = [
        ReturnAction::Approve,
        ReturnAction::Reject,
        ReturnAction::Receive,
        ReturnAction::Refund,
        ReturnAction::Close,
    ];

    #[test]
    fn exactly_the_listed_transitions_are_allowed() {
        use ReturnAction as A;
        use ReturnStatus as S;
        let allowed = [
            (S::Requested, A::Approve, S::Approved),
            (S::Requested, A::Reject, S::Rejected),
            (S::Approved, A::Receive, S::Received),
            (S::Received, A::Refund, S::Refunded),
            (S::Requested, A::Close, S::Closed),
            (S::Approved, A::Close, S::Closed),
            (S::Received, A::Close, S::Closed),
        ];
        for from in ReturnStatus::ALL {
            for action in ACTIONS {
                let want = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|r| r.2);
                match (transition(from, action), want) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(e), None) => assert_eq!(e.code(), "invalid_transition"),
                    (got, want) => panic!("{from:?} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(
            transition(S::Received, A::Receive)
                .expect_err("twice")
                .to_string(),
            "cannot receive a return that is received"
        );
        for s in ReturnStatus::ALL {
            assert_eq!(ReturnStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_window_runs_from_delivery() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert!(window_open(Some(at), at + Duration::days(30), 30));
        assert!(!window_open(
            Some(at),
            at + Duration::days(30) + Duration::seconds(1),
            30
        ));
        assert!(!window_open(None, at, 30), "nothing delivered yet");
    }

    #[test]
    fn receipts_stay_within_the_return() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let asked = [(a, 2), (b, 1)];
        let ok = check_receipt(
            &asked,
            &[
                Receipt {
                    line_id: a,
                    received: 2,
                    restock: true,
                },
                Receipt {
                    line_id: b,
                    received: 1,
                    restock: false,
                },
            ],
        )
        .expect("fits");
        assert_eq!(ok, vec![(a, 2, 2), (b, 1, 0)]);
        let short = check_receipt(&asked, &[]).expect("nothing arrived");
        assert_eq!(short, vec![(a, 0, 0), (b, 0, 0)]);
        let over = check_receipt(
            &asked,
            &[Receipt {
                line_id: a,
                received: 3,
                restock: true,
            }],
        );
        assert_eq!(over.map_err(|e| e.code()), Err("over_receipt"));
        let stray = check_receipt(
            &asked,
            &[Receipt {
                line_id: Uuid::from_u128(9),
                received: 1,
                restock: true,
            }],
        );
        assert!(stray.is_err());
    }

    proptest! {
        /// Accepted returns never take a line past what was delivered, and
        /// receipts never restock more than arrived.
        #[test]
        fn returns_and_receipts_conserve_units(
            lines in proptest::collection::vec((0i64..6, 0i64..6), 1..5),
            asks in proptest::collection::vec((0usize..5, 1i64..5), 1..8),
            got in proptest::collection::vec((0i64..6, any::<bool>()), 5),
        ) {
            let lines: Vec<LineDelivered> = lines
                .iter()
                .enumerate()
                .map(|(n, (d, r))| LineDelivered {
                    line_id: Uuid::from_u128(n as u128),
                    delivered: *d,
                    returned: (*r).min(*d),
                })
                .collect();
            let requested: Vec<(Uuid, i64)> = asks
                .iter()
                .map(|(n, q)| (Uuid::from_u128((*n % lines.len()) as u128), *q))
                .collect();
            if let Ok(merged) = check_return(&lines, &requested) {
                for l in &lines {
                    let taken = merged.get(&l.line_id).copied().unwrap_or(0);
                    prop_assert!(l.returned + taken <= l.delivered);
                }
                let asked: Vec<(Uuid, i64)> = merged.into_iter().collect();
                let receipt: Vec<Receipt> = asked
                    .iter()
                    .zip(&got)
                    .map(|((line, _), (n, restock))| Receipt { line_id: *line, received: *n, restock: *restock })
                    .collect();
                if let Ok(out) = check_receipt(&asked, &receipt) {
                    for ((line, want), (same, received, restocked)) in asked.iter().zip(&out) {
                        prop_assert_eq!(line, same);
                        prop_assert!(0 <= *restocked && restocked <= received && received <= want);
                    }
                }
            }
        }
    }
}

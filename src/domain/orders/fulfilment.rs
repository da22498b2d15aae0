//! Fulfilments: the parcels an order ships in. Their status machine, the
//! check that no line is fulfilled beyond what was ordered, and the choice
//! of the stock location a parcel leaves from. No I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a parcel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentStatus {
    /// Being picked and packed; its units are promised to it.
    Pending,
    /// Left the location: its units are sold off the shelves.
    Shipped,
    /// Arrived.
    Delivered,
    /// Given up before it shipped; its units may go into another parcel.
    Cancelled,
}

impl FulfilmentStatus {
    /// Every status.
    pub const ALL: [FulfilmentStatus; 4] = [
        FulfilmentStatus::Pending,
        FulfilmentStatus::Shipped,
        FulfilmentStatus::Delivered,
        FulfilmentStatus::Cancelled,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FulfilmentStatus::Pending => "pending",
            FulfilmentStatus::Shipped => "shipped",
            FulfilmentStatus::Delivered => "delivered",
            FulfilmentStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether its units have left the shelves.
    pub fn has_shipped(self) -> bool {
        matches!(
            self,
            FulfilmentStatus::Shipped | FulfilmentStatus::Delivered
        )
    }

    /// Whether its units count against the order's lines.
    pub fn counts(self) -> bool {
        self != FulfilmentStatus::Cancelled
    }
}

/// A tracking change: `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingChange {
    pub carrier: Option<Option<String>>,
    pub tracking_number: Option<Option<String>>,
    pub tracking_url: Option<Option<String>>,
}

/// What an admin does to a parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfilmentAction {
    Ship,
    Deliver,
    Cancel,
}

impl FulfilmentAction {
    /// The action's name in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            FulfilmentAction::Ship => "ship",
            FulfilmentAction::Deliver => "deliver",
            FulfilmentAction::Cancel => "cancel",
        }
    }
}

/// Why a fulfilment request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FulfilmentRefusal {
    /// The parcel's status does not allow the action.
    #[error("cannot {} a fulfilment that is {}", .action.as_str(), .current.as_str())]
    InvalidState {
        action: FulfilmentAction,
        current: FulfilmentStatus,
    },
    /// More units of a line than are left unfulfilled.
    #[error("line {line_id} has {left} unit(s) left to fulfil, not {requested}")]
    OverFulfilment {
        line_id: Uuid,
        requested: i64,
        left: i64,
    },
    /// The named location does not hold the units for this order.
    #[error("location {location_id} does not hold {requested} unit(s) of line {line_id} for this order ({held} held there)")]
    NotAtLocation {
        location_id: Uuid,
        line_id: Uuid,
        requested: i64,
        held: i64,
    },
    /// The order's reservation does not hold units the parcel needs (its
    /// stock was given back); nothing can ship them.
    #[error("the order's stock no longer holds {missing} unit(s) of line {line_id}")]
    NotHeld { line_id: Uuid, missing: i64 },
    /// No one location holds every requested unit: name one per parcel.
    #[error("no single location holds all of these units; split the fulfilment by location_id")]
    SeveralLocations,
}

impl FulfilmentRefusal {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            FulfilmentRefusal::InvalidState { .. } => "invalid_transition",
            FulfilmentRefusal::OverFulfilment { .. } => "over_fulfilment",
            FulfilmentRefusal::NotAtLocation { .. } => "not_at_location",
            FulfilmentRefusal::NotHeld { .. } => "stock_not_held",
            FulfilmentRefusal::SeveralLocations => "location_required",
        }
    }
}

/// The status after `action` on a parcel in `current`.
pub fn transition(
    current: FulfilmentStatus,
    action: FulfilmentAction,
) -> Result<FulfilmentStatus, FulfilmentRefusal> {
    use FulfilmentAction as A;
    use FulfilmentStatus as S;
    match (current, action) {
        (S::Pending, A::Ship) => Ok(S::Shipped),
        (S::Shipped, A::Deliver) => Ok(S::Delivered),
        (S::Pending, A::Cancel) => Ok(S::Cancelled),
        _ => Err(FulfilmentRefusal::InvalidState { action, current }),
    }
}

/// One order line as fulfilments see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLeft {
    pub line_id: Uuid,
    pub variant_id: Uuid,
    pub ordered: i64,
    /// Units in parcels that are not cancelled.
    pub fulfilled: i64,
}

/// Units of one line requested for a parcel.
pub type Request = BTreeMap<Uuid, i64>;

/// Merges `requested` (line id, quantity) per line and checks each against
/// what is left of it: refuses any line asked for more than
/// `ordered - fulfilled`. Lines must be known (the caller resolves them).
pub fn check_quantities(
    lines: &[LineLeft],
    requested: &[(Uuid, i64)],
) -> Result<Request, FulfilmentRefusal> {
    let mut merged = Request::new();
    for (line, quantity) in requested {
        *merged.entry(*line).or_default() += quantity;
    }
    for (line_id, wanted) in &merged {
        let left = lines
            .iter()
            .find(|l| l.line_id == *line_id)
            .map_or(0, |l| l.ordered - l.fulfilled);
        if *wanted > left {
            return Err(FulfilmentRefusal::OverFulfilment {
                line_id: *line_id,
                requested: *wanted,
                left,
            });
        }
    }
    Ok(merged)
}

/// What one location holds for one line of the order and is not yet in a
/// parcel from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAt {
    pub location_id: Uuid,
    pub line_id: Uuid,
    pub free: i64,
}

/// The location a parcel of `request` leaves from. `held` lists, in the
/// shop's order of preference (the locations' priority), what each
/// location holds for each line that no parcel from there has taken.
/// A named location must hold every requested unit; otherwise the first
/// that does is chosen.
pub fn choose_location(
    held: &[HeldAt],
    request: &Request,
    named: Option<Uuid>,
) -> Result<Uuid, FulfilmentRefusal> {
    let free_at = |location: Uuid, line: Uuid| -> i64 {
        held.iter()
            .filter(|h| h.location_id == location && h.line_id == line)
            .map(|h| h.free)
            .sum()
    };
    if let Some(location_id) = named {
        for (line_id, requested) in request {
            let free = free_at(location_id, *line_id);
            if free < *requested {
                return Err(FulfilmentRefusal::NotAtLocation {
                    location_id,
                    line_id: *line_id,
                    requested: *requested,
                    held: free,
                });
            }
        }
        return Ok(location_id);
    }
    let mut seen: Vec<Uuid> = Vec::new();
    for h in held {
        if seen.contains(&h.location_id) {
            continue;
        }
        seen.push(h.location_id);
        if request
            .iter()
            .all(|(line, wanted)| free_at(h.location_id, *line) >= *wanted)
        {
            return Ok(h.location_id);
        }
    }
    Err(FulfilmentRefusal::SeveralLocations)
}

/// Splits what is left of every line into one parcel per location, taking
/// from locations in the order `held` lists them (the whole-order
/// shortcut). Fails when the locations do not hold what is left.
pub fn split_by_location(
    held: &[HeldAt],
    left: &Request,
) -> Result<Vec<(Uuid, Request)>, FulfilmentRefusal> {
    let mut parcels: Vec<(Uuid, Request)> = Vec::new();
    let mut to_take = left.clone();
    for h in held {
        let Some(wanted) = to_take.get_mut(&h.line_id) else {
            continue;
        };
        let take = (*wanted).min(h.free);
        if take <= 0 {
            continue;
        }
        *wanted -= take;
        match parcels.iter_mut().find(|(l, _)| *l == h.location_id) {
            Some((_, parcel)) => *parcel.entry(h.line_id).or_default() += take,
            None => parcels.push((h.location_id, Request::from([(h.line_id, take)]))),
        }
    }
    match to_take.into_iter().find(|(_, wanted)| *wanted > 0) {
        Some((line_id, wanted)) => Err(FulfilmentRefusal::NotHeld {
            line_id,
            missing: wanted,
        }),
        None => Ok(parcels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ACTIONS: [FulfilmentAction; 3] = [
        FulfilmentAction::Ship,
        FulfilmentAction::Deliver,
        FulfilmentAction::Cancel,
    ];

    #[test]
    fn exactly_the_listed_transitions_are_allowed() {
        use FulfilmentAction as A;
        use FulfilmentStatus as S;
        let allowed = [
            (S::Pending, A::Ship, S::Shipped),
            (S::Shipped, A::Deliver, S::Delivered),
            (S::Pending, A::Cancel, S::Cancelled),
        ];
        for from in FulfilmentStatus::ALL {
            for action in ACTIONS {
                let want = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|row| row.2);
                match (transition(from, action), want) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(e), None) => assert_eq!(e.code(), "invalid_transition"),
                    (got, want) => panic!("{from:?} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        let e = transition(S::Shipped, A::Cancel).expect_err("refused");
        assert_eq!(e.to_string(), "cannot cancel a fulfilment that is shipped");
    }

    #[test]
    fn names_round_trip_and_say_what_counts() {
        for s in FulfilmentStatus::ALL {
            assert_eq!(FulfilmentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(FulfilmentStatus::parse("lost"), None);
        assert!(FulfilmentStatus::Delivered.has_shipped());
        assert!(!FulfilmentStatus::Pending.has_shipped());
        assert!(!FulfilmentStatus::Cancelled.counts());
        assert!(FulfilmentStatus::Pending.counts());
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn line(n: u128, ordered: i64, fulfilled: i64) -> LineLeft {
        LineLeft {
            line_id: id(n),
            variant_id: id(100 + n),
            ordered,
            fulfilled,
        }
    }

    #[test]
    fn a_line_is_never_asked_for_more_than_is_left_even_in_pieces() {
        let lines = [line(1, 3, 1), line(2, 1, 0)];
        let ok = check_quantities(&lines, &[(id(1), 1), (id(1), 1), (id(2), 1)]).expect("fits");
        assert_eq!(ok, Request::from([(id(1), 2), (id(2), 1)]));
        let e = check_quantities(&lines, &[(id(1), 2), (id(1), 1)]).expect_err("3 > 2");
        assert_eq!(
            e,
            FulfilmentRefusal::OverFulfilment {
                line_id: id(1),
                requested: 3,
                left: 2
            }
        );
        assert_eq!(e.code(), "over_fulfilment");
        assert!(check_quantities(&lines, &[(id(9), 1)]).is_err());
    }

    #[test]
    fn a_parcel_leaves_from_the_first_location_holding_all_of_it_or_the_one_named() {
        let (eu, us) = (id(10), id(20));
        let held = [
            HeldAt {
                location_id: eu,
                line_id: id(1),
                free: 2,
            },
            HeldAt {
                location_id: us,
                line_id: id(1),
                free: 3,
            },
            HeldAt {
                location_id: us,
                line_id: id(2),
                free: 1,
            },
        ];
        let one = Request::from([(id(1), 2)]);
        assert_eq!(choose_location(&held, &one, None), Ok(eu));
        assert_eq!(choose_location(&held, &one, Some(us)), Ok(us));
        let both = Request::from([(id(1), 1), (id(2), 1)]);
        assert_eq!(choose_location(&held, &both, None), Ok(us));
        let e = choose_location(&held, &both, Some(eu)).expect_err("not at eu");
        assert_eq!(e.code(), "not_at_location");
        let too_many = Request::from([(id(1), 4)]);
        assert_eq!(
            choose_location(&held, &too_many, None),
            Err(FulfilmentRefusal::SeveralLocations)
        );
        let parcels =
            split_by_location(&held, &Request::from([(id(1), 4), (id(2), 1)])).expect("split");
        assert_eq!(
            parcels,
            vec![
                (eu, Request::from([(id(1), 2)])),
                (us, Request::from([(id(1), 2), (id(2), 1)]))
            ]
        );
    }

    proptest! {
        /// Whatever is asked, in whatever pieces, an accepted request never
        /// takes a line past what was ordered.
        #[test]
        fn accepted_requests_never_overfulfil(
            ordered in proptest::collection::vec((1i64..20, 0i64..20), 1..6),
            asks in proptest::collection::vec((0usize..6, 1i64..25), 0..12),
        ) {
            let lines: Vec<LineLeft> = ordered
                .iter()
                .enumerate()
                .map(|(n, (o, f))| line(n as u128, *o, (*f).min(*o)))
                .collect();
            let requested: Vec<(Uuid, i64)> = asks
                .iter()
                .map(|(n, q)| (id((*n % lines.len()) as u128), *q))
                .collect();
            if let Ok(merged) = check_quantities(&lines, &requested) {
                for l in &lines {
                    let taken = merged.get(&l.line_id).copied().unwrap_or(0);
                    prop_assert!(l.fulfilled + taken <= l.ordered);
                }
                let asked: i64 = requested.iter().map(|r| r.1).sum();
                prop_assert_eq!(merged.values().sum::<i64>(), asked);
            }
        }

        /// A split takes exactly what is left, never more from a location
        /// than it holds for a line, or fails only when the holdings fall
        /// short; a chosen location always holds the whole request.
        #[test]
        fn splits_and_choices_respect_what_each_location_holds(
            holdings in proptest::collection::vec((0u128..3, 0u128..3, 0i64..6), 0..9),
            wanted in proptest::collection::vec((0u128..3, 1i64..8), 1..4),
        ) {
            let held: Vec<HeldAt> = holdings
                .iter()
                .map(|(loc, l, free)| HeldAt { location_id: id(10 + loc), line_id: id(*l), free: *free })
                .collect();
            let mut left = Request::new();
            for (l, q) in &wanted {
                *left.entry(id(*l)).or_default() += q;
            }
            let total_held = |line: Uuid| -> i64 {
                held.iter().filter(|h| h.line_id == line).map(|h| h.free).sum()
            };
            match split_by_location(&held, &left) {
                Ok(parcels) => {
                    for (line, q) in &left {
                        let taken: i64 = parcels.iter().filter_map(|(_, p)| p.get(line)).sum();
                        prop_assert_eq!(taken, *q);
                    }
                    for (loc, parcel) in &parcels {
                        for (line, q) in parcel {
                            let there: i64 = held.iter()
                                .filter(|h| h.location_id == *loc && h.line_id == *line)
                                .map(|h| h.free).sum();
                            prop_assert!(*q <= there);
                        }
                    }
                }
                Err(_) => prop_assert!(left.iter().any(|(line, q)| total_held(*line) < *q)),
            }
            if let Ok(loc) = choose_location(&held, &left, None) {
                for (line, q) in &left {
                    let there: i64 = held.iter()
                        .filter(|h| h.location_id == loc && h.line_id == *line)
                        .map(|h| h.free).sum();
                    prop_assert!(*q <= there);
                }
            }
        }
    }
}

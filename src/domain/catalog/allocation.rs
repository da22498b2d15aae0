//! Which stock locations a reservation line takes from, and the ledger
//! movements stock changes are recorded as.

use uuid::Uuid;

/// A location that could serve a line: its rank and what it has free
/// (on hand, not held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub location_id: Uuid,
    /// Higher first; ties go to the lower location id, so the choice never
    /// depends on the order rows came back in.
    pub priority: i32,
    pub free: i32,
}

/// Units taken from one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub location_id: Uuid,
    pub quantity: i32,
}

/// Sources in the order they are preferred.
fn ranked(sources: &[Source]) -> Vec<Source> {
    let mut ranked: Vec<Source> = sources.iter().copied().filter(|s| s.free > 0).collect();
    ranked.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.location_id.cmp(&b.location_id))
    });
    ranked
}

/// Where `quantity` units come from: the highest-priority location that
/// can cover the whole line (one parcel, one origin), else as much as each
/// location has in priority order. `None` when all of them together have
/// too few; nothing is taken then.
pub fn allocate(sources: &[Source], quantity: i32) -> Option<Vec<Take>> {
    if quantity <= 0 {
        return Some(Vec::new());
    }
    let ranked = ranked(sources);
    if let Some(whole) = ranked.iter().find(|s| s.free >= quantity) {
        return Some(vec![Take {
            location_id: whole.location_id,
            quantity,
        }]);
    }
    let mut left = quantity;
    let mut takes = Vec::new();
    for source in ranked {
        let quantity = source.free.min(left);
        takes.push(Take {
            location_id: source.location_id,
            quantity,
        });
        left -= quantity;
        if left == 0 {
            return Some(takes);
        }
    }
    None
}

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// An admin counted or changed what is on hand.
    Adjustment,
    /// A reservation took units (they stay on hand, held).
    Reservation,
    /// A reservation gave its units back (cancelled or expired).
    Release,
    /// A reservation was paid for: its units left the stock.
    Sale,
    /// Sold units came back onto the shelf.
    Return,
}

impl MovementKind {
    /// Every kind, in the order the API documents them.
    pub const ALL: [MovementKind; 5] = [
        MovementKind::Adjustment,
        MovementKind::Reservation,
        MovementKind::Release,
        MovementKind::Sale,
        MovementKind::Return,
    ];

    /// The kind as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Adjustment => "adjustment",
            MovementKind::Reservation => "reservation",
            MovementKind::Release => "release",
            MovementKind::Sale => "sale",
            MovementKind::Return => "return",
        }
    }

    /// The kind named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How `quantity` units of this kind change a level's
    /// `(on_hand, held)`.
    pub fn deltas(self, quantity: i32) -> (i32, i32) {
        match self {
            MovementKind::Adjustment => (quantity, 0),
            MovementKind::Reservation => (0, quantity),
            MovementKind::Release => (0, -quantity),
            MovementKind::Sale => (-quantity, -quantity),
            MovementKind::Return => (quantity, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn source(n: u128, priority: i32, free: i32) -> Source {
        Source {
            location_id: id(n),
            priority,
            free,
        }
    }

    #[test]
    fn one_location_that_covers_the_line_wins_over_a_split() {
        // The first-ranked has too few; the second covers it all.
        let sources = [source(1, 10, 2), source(2, 5, 7), source(3, 1, 100)];
        assert_eq!(
            allocate(&sources, 6),
            Some(vec![Take {
                location_id: id(2),
                quantity: 6
            }])
        );
    }

    #[test]
    fn a_line_no_location_covers_is_split_in_priority_order() {
        let sources = [source(3, 1, 4), source(1, 10, 2), source(2, 5, 3)];
        assert_eq!(
            allocate(&sources, 8),
            Some(vec![
                Take {
                    location_id: id(1),
                    quantity: 2
                },
                Take {
                    location_id: id(2),
                    quantity: 3
                },
                Take {
                    location_id: id(3),
                    quantity: 3
                },
            ])
        );
        assert_eq!(allocate(&sources, 10), None);
    }

    #[test]
    fn ties_go_to_the_lower_id_whatever_the_row_order() {
        let a = [source(2, 5, 9), source(1, 5, 9)];
        let b = [source(1, 5, 9), source(2, 5, 9)];
        assert_eq!(allocate(&a, 3), allocate(&b, 3));
        assert_eq!(allocate(&a, 3).expect("covered")[0].location_id, id(1));
    }

    #[test]
    fn movement_kinds_round_trip_and_keep_their_signs() {
        for kind in MovementKind::ALL {
            assert_eq!(MovementKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MovementKind::Sale.deltas(3), (-3, -3));
        assert_eq!(MovementKind::Release.deltas(3), (0, -3));
        assert_eq!(MovementKind::parse("theft"), None);
    }

    proptest! {
        #[test]
        fn allocations_take_exactly_the_line_and_never_more_than_is_free(
            raw in proptest::collection::vec((0..4_i32, 0..20_i32), 0..6),
            quantity in 1..60_i32,
        ) {
            let sources: Vec<Source> = raw
                .iter()
                .enumerate()
                .map(|(n, (priority, free))| source(n as u128, *priority, *free))
                .collect();
            let total: i32 = sources.iter().map(|s| s.free).sum();
            match allocate(&sources, quantity) {
                None => prop_assert!(total < quantity),
                Some(takes) => {
                    prop_assert_eq!(takes.iter().map(|t| t.quantity).sum::<i32>(), quantity);
                    for take in &takes {
                        let from = sources.iter().find(|s| s.location_id == take.location_id).expect("a source");
                        prop_assert!(take.quantity > 0 && take.quantity <= from.free);
                    }
                    if sources.iter().any(|s| s.free >= quantity) {
                        prop_assert_eq!(takes.len(), 1);
                    } else {
                        // A split empties every location it takes from but
                        // the last, highest priority first.
                        for pair in takes.windows(2) {
                            let first = sources.iter().find(|s| s.location_id == pair[0].location_id).expect("valid");
                            let next = sources.iter().find(|s| s.location_id == pair[1].location_id).expect("valid");
                            prop_assert_eq!(pair[0].quantity, first.free);
                            prop_assert!(first.priority >= next.priority);
                        }
                    }
                    // Reversed input, same answer.
                    let mut reversed = sources.clone();
                    reversed.reverse();
                    prop_assert_eq!(allocate(&reversed, quantity), Some(takes));
                }
            }
        }
    }
}

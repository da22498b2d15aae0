//! Partial refunds: their status machine, and their price. A refund of
//! order lines is priced from the order's snapshot (each line's total less
//! its discount share, plus its tax unless prices include it), a unit at a
//! time, so that refunding every unit of every line and the shipping, in
//! any pieces, gives back exactly the order's total. No I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Counted against the captured amount; the provider is being asked.
    Pending,
    /// The money went back.
    Succeeded,
    /// The provider refused it; it no longer counts.
    Failed,
}

impl RefundStatus {
    /// Every status.
    pub const ALL: [RefundStatus; 3] = [
        RefundStatus::Pending,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether it counts against the captured amount.
    pub fn counts(self) -> bool {
        self != RefundStatus::Failed
    }
}

/// What the provider said of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    Succeeded,
    Failed,
}

/// The status after `outcome` on a refund in `current`; `None` when it
/// was settled already (a repeated outcome changes nothing).
pub fn settle(current: RefundStatus, outcome: RefundOutcome) -> Option<RefundStatus> {
    match (current, outcome) {
        (RefundStatus::Pending, RefundOutcome::Succeeded) => Some(RefundStatus::Succeeded),
        (RefundStatus::Pending, RefundOutcome::Failed) => Some(RefundStatus::Failed),
        _ => None,
    }
}

/// One order line as the order's snapshot has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineBasis {
    pub line_id: Uuid,
    pub quantity: i64,
    /// Units that have shipped: only those are refunded by line (units
    /// still on the shelf are cancelled, not refunded, or they would be
    /// both paid back and sent).
    pub shipped: i64,
    pub line_total: i64,
    /// The line's share of the order's discount.
    pub discount: i64,
    pub tax: i64,
}

/// The order as refunds price it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundBasis {
    pub prices_include_tax: bool,
    pub shipping: i64,
    pub shipping_tax: i64,
    pub lines: Vec<LineBasis>,
}

impl RefundBasis {
    /// What the customer paid for a whole line.
    pub fn line_value(&self, line: &LineBasis) -> i64 {
        let tax = if self.prices_include_tax { 0 } else { line.tax };
        line.line_total - line.discount + tax
    }

    /// What the customer paid for shipping.
    pub fn shipping_value(&self) -> i64 {
        let tax = if self.prices_include_tax {
            0
        } else {
            self.shipping_tax
        };
        self.shipping + tax
    }
}

/// What earlier refunds of the payment (pending or succeeded) took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// Units refunded per line.
    pub units: BTreeMap<Uuid, i64>,
    /// Whether shipping was refunded.
    pub shipping: bool,
    /// Their amounts, summed.
    pub amount: i64,
}

/// What an admin asks to give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAsk {
    /// An amount, in minor units.
    Amount(i64),
    /// Units of order lines, and perhaps the shipping charge.
    Lines {
        lines: Vec<(Uuid, i64)>,
        include_shipping: bool,
    },
}

/// One line of a priced refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundedLine {
    pub line_id: Uuid,
    pub quantity: i64,
    /// What these units cost the customer, tax and discount share included.
    pub amount: i64,
}

/// A refund's price and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedRefund {
    pub amount: i64,
    pub lines: Vec<RefundedLine>,
    pub shipping: bool,
}

/// Why a refund is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// The ask names a line the order does not have (its position).
    #[error("lines.{0}.line_id names no line of this order")]
    UnknownLine(usize),
    /// More units of a line than have shipped and are left to refund.
    #[error("line {line_id} has {left} shipped unit(s) left to refund, not {requested}")]
    OverRefund {
        line_id: Uuid,
        requested: i64,
        left: i64,
    },
    /// The shipping charge was refunded already.
    #[error("the shipping charge has been refunded already")]
    ShippingRefunded,
    /// The ask prices at nothing (free lines, no shipping charge).
    #[error("this refund comes to nothing")]
    Nothing,
    /// More than what is left of the captured amount.
    #[error("{requested} is more than the {left} left of the captured amount")]
    ExceedsCaptured { requested: i64, left: i64 },
}

impl RefundRefusal {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RefundRefusal::UnknownLine(_) => "validation_error",
            RefundRefusal::OverRefund { .. } | RefundRefusal::ShippingRefunded => "over_refund",
            RefundRefusal::Nothing => "nothing_to_refund",
            RefundRefusal::ExceedsCaptured { .. } => "refund_exceeds_captured",
        }
    }
}

/// What `units` more units of a line worth `value` for `quantity` cost,
/// after `already` were refunded: the line's value is handed out unit by
/// unit, rounding down, the last unit taking what is left, so the pieces
/// of a line always add up to its value.
pub fn unit_share(value: i64, quantity: i64, already: i64, units: i64) -> i64 {
    if quantity <= 0 {
        return 0;
    }
    let upto = |n: i64| -> i128 { i128::from(value) * i128::from(n) / i128::from(quantity) };
    i64::try_from(upto(already + units) - upto(already)).unwrap_or(i64::MAX)
}

/// Prices `ask` against the order's snapshot `basis`, what earlier refunds
/// `taken`, and the `captured` amount.
pub fn price_refund(
    basis: &RefundBasis,
    taken: &Taken,
    ask: &RefundAsk,
    captured: i64,
) -> Result<PricedRefund, RefundRefusal> {
    let priced = match ask {
        RefundAsk::Amount(amount) => PricedRefund {
            amount: *amount,
            lines: Vec::new(),
            shipping: false,
        },
        RefundAsk::Lines {
            lines,
            include_shipping,
        } => {
            let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
            for (index, (line_id, units)) in lines.iter().enumerate() {
                if !basis.lines.iter().any(|l| l.line_id == *line_id) {
                    return Err(RefundRefusal::UnknownLine(index));
                }
                *merged.entry(*line_id).or_default() += units;
            }
            let mut priced = Vec::new();
            let mut amount = 0i64;
            for line in &basis.lines {
                let Some(units) = merged.get(&line.line_id).copied() else {
                    continue;
                };
                let already = taken.units.get(&line.line_id).copied().unwrap_or(0);
                let left = line.shipped.min(line.quantity) - already;
                if units > left {
                    return Err(RefundRefusal::OverRefund {
                        line_id: line.line_id,
                        requested: units,
                        left,
                    });
                }
                let share = unit_share(basis.line_value(line), line.quantity, already, units);
                amount = amount.saturating_add(share);
                priced.push(RefundedLine {
                    line_id: line.line_id,
                    quantity: units,
                    amount: share,
                });
            }
            if *include_shipping {
                if taken.shipping {
                    return Err(RefundRefusal::ShippingRefunded);
                }
                amount = amount.saturating_add(basis.shipping_value());
            }
            PricedRefund {
                amount,
                lines: priced,
                shipping: *include_shipping,
            }
        }
    };
    if priced.amount <= 0 {
        return Err(RefundRefusal::Nothing);
    }
    let left = captured - taken.amount;
    if priced.amount > left {
        return Err(RefundRefusal::ExceedsCaptured {
            requested: priced.amount,
            left: left.max(0),
        });
    }
    Ok(priced)
}

/// What `taken` becomes once `priced` counts too.
pub fn take(taken: &Taken, priced: &PricedRefund) -> Taken {
    let mut next = taken.clone();
    for line in &priced.lines {
        *next.units.entry(line.line_id).or_default() += line.quantity;
    }
    next.shipping |= priced.shipping;
    next.amount += priced.amount;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn basis(inclusive: bool) -> RefundBasis {
        RefundBasis {
            prices_include_tax: inclusive,
            shipping: 490,
            shipping_tax: 98,
            lines: vec![
                LineBasis {
                    line_id: id(1),
                    quantity: 3,
                    shipped: 3,
                    line_total: 1000,
                    discount: 100,
                    tax: 180,
                },
                LineBasis {
                    line_id: id(2),
                    quantity: 1,
                    shipped: 1,
                    line_total: 500,
                    discount: 50,
                    tax: 90,
                },
            ],
        }
    }

    #[test]
    fn a_refund_settles_once() {
        use RefundOutcome as O;
        use RefundStatus as S;
        assert_eq!(settle(S::Pending, O::Succeeded), Some(S::Succeeded));
        assert_eq!(settle(S::Pending, O::Failed), Some(S::Failed));
        for done in [S::Succeeded, S::Failed] {
            assert_eq!(settle(done, O::Succeeded), None);
            assert_eq!(settle(done, O::Failed), None);
        }
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        assert!(!RefundStatus::Failed.counts());
    }

    #[test]
    fn a_line_is_priced_with_its_discount_share_and_tax_unit_by_unit() {
        let b = basis(false);
        // 1000 - 100 + 180 = 1080 for 3 units: 360 each.
        let one = RefundAsk::Lines {
            lines: vec![(id(1), 1)],
            include_shipping: false,
        };
        let priced = price_refund(&b, &Taken::default(), &one, 10_000).expect("priced");
        assert_eq!(priced.amount, 360);
        // With shipping: + 490 + 98.
        let with_shipping = RefundAsk::Lines {
            lines: vec![(id(2), 1)],
            include_shipping: true,
        };
        let priced = price_refund(&b, &Taken::default(), &with_shipping, 10_000).expect("priced");
        assert_eq!(priced.amount, 500 - 50 + 90 + 588);
        // Prices including tax: the tax is inside the line.
        let inclusive = price_refund(&basis(true), &Taken::default(), &one, 10_000).expect("ok");
        assert_eq!(inclusive.amount, 300);
        // An odd split: 1000 over 3 units gives 333, 333, 334.
        let odd = RefundBasis {
            prices_include_tax: true,
            shipping: 0,
            shipping_tax: 0,
            lines: vec![LineBasis {
                line_id: id(1),
                quantity: 3,
                shipped: 3,
                line_total: 1000,
                discount: 0,
                tax: 0,
            }],
        };
        let mut taken = Taken::default();
        let mut amounts = Vec::new();
        for _ in 0..3 {
            let p = price_refund(&odd, &taken, &one, 1000).expect("ok");
            amounts.push(p.amount);
            taken = take(&taken, &p);
        }
        assert_eq!(amounts, [333, 333, 334]);
        assert_eq!(
            price_refund(&odd, &taken, &one, 1000),
            Err(RefundRefusal::OverRefund {
                line_id: id(1),
                requested: 1,
                left: 0
            })
        );
    }

    #[test]
    fn units_still_on_the_shelf_are_not_refunded_by_line() {
        let mut b = basis(false);
        b.lines[0].shipped = 1;
        let two = RefundAsk::Lines {
            lines: vec![(id(1), 2)],
            include_shipping: false,
        };
        assert_eq!(
            price_refund(&b, &Taken::default(), &two, 10_000),
            Err(RefundRefusal::OverRefund {
                line_id: id(1),
                requested: 2,
                left: 1
            })
        );
        // An amount is not tied to units.
        assert!(price_refund(&b, &Taken::default(), &RefundAsk::Amount(500), 10_000).is_ok());
    }

    #[test]
    fn refusals_name_their_reason() {
        let b = basis(false);
        let unknown = RefundAsk::Lines {
            lines: vec![(id(1), 1), (id(9), 1)],
            include_shipping: false,
        };
        assert_eq!(
            price_refund(&b, &Taken::default(), &unknown, 10_000),
            Err(RefundRefusal::UnknownLine(1))
        );
        let shipped = Taken {
            shipping: true,
            ..Taken::default()
        };
        let again = RefundAsk::Lines {
            lines: vec![],
            include_shipping: true,
        };
        assert_eq!(
            price_refund(&b, &shipped, &again, 10_000).map_err(|e| e.code()),
            Err("over_refund")
        );
        let too_much = RefundAsk::Amount(101);
        let e = price_refund(
            &b,
            &Taken {
                amount: 900,
                ..Taken::default()
            },
            &too_much,
            1000,
        )
        .expect_err("over");
        assert_eq!(
            e,
            RefundRefusal::ExceedsCaptured {
                requested: 101,
                left: 100
            }
        );
        assert_eq!(e.code(), "refund_exceeds_captured");
        assert_eq!(
            price_refund(&b, &Taken::default(), &RefundAsk::Amount(0), 1000),
            Err(RefundRefusal::Nothing)
        );
    }

    fn arbitrary_basis() -> impl Strategy<Value = RefundBasis> {
        (
            any::<bool>(),
            0i64..5_000,
            0i64..1_000,
            proptest::collection::vec((1i64..8, 0i64..50_000, 0i64..100, 0i64..3_000), 1..5),
        )
            .prop_map(|(inclusive, shipping, shipping_tax, lines)| RefundBasis {
                prices_include_tax: inclusive,
                shipping,
                shipping_tax,
                lines: lines
                    .into_iter()
                    .enumerate()
                    .map(|(n, (quantity, total, discount_pct, tax))| LineBasis {
                        line_id: id(n as u128 + 1),
                        quantity,
                        shipped: quantity,
                        line_total: total,
                        discount: total * discount_pct / 100,
                        tax,
                    })
                    .collect(),
            })
    }

    proptest! {
        /// Refunding every unit of every line, and the shipping, in random
        /// pieces and order, gives back exactly what the order charged.
        #[test]
        fn every_unit_in_any_pieces_adds_up_to_the_order_total(
            basis in arbitrary_basis(),
            chunks in proptest::collection::vec((0usize..5, 1i64..4), 1..40),
            shipping_at in 0usize..40,
        ) {
            let total: i64 = basis.lines.iter().map(|l| basis.line_value(l)).sum::<i64>()
                + basis.shipping_value();
            let mut taken = Taken::default();
            let mut refunded = 0i64;
            let mut asks: Vec<RefundAsk> = Vec::new();
            for (n, (line, units)) in chunks.iter().enumerate() {
                let line = &basis.lines[*line % basis.lines.len()];
                asks.push(RefundAsk::Lines {
                    lines: vec![(line.line_id, *units)],
                    include_shipping: n == shipping_at,
                });
            }
            // Then whatever is left, line by line, and the shipping.
            for line in &basis.lines {
                asks.push(RefundAsk::Lines { lines: vec![(line.line_id, line.quantity)], include_shipping: false });
            }
            asks.push(RefundAsk::Lines { lines: vec![], include_shipping: true });
            for ask in asks {
                // Too many units or shipping twice: ask for what is left.
                let ask = match ask {
                    RefundAsk::Lines { lines, include_shipping } => RefundAsk::Lines {
                        lines: lines
                            .into_iter()
                            .map(|(l, u)| {
                                let q = basis.lines.iter().find(|x| x.line_id == l).map_or(0, |x| x.quantity);
                                (l, u.min(q - taken.units.get(&l).copied().unwrap_or(0)))
                            })
                            .filter(|(_, u)| *u > 0)
                            .collect(),
                        include_shipping: include_shipping && !taken.shipping,
                    },
                    other => other,
                };
                match price_refund(&basis, &taken, &ask, total) {
                    Ok(priced) => {
                        prop_assert!(priced.amount > 0);
                        prop_assert_eq!(
                            priced.lines.iter().map(|l| l.amount).sum::<i64>()
                                + if priced.shipping { basis.shipping_value() } else { 0 },
                            priced.amount
                        );
                        refunded += priced.amount;
                        taken = take(&taken, &priced);
                    }
                    Err(RefundRefusal::Nothing) => {}
                    Err(other) => prop_assert!(false, "refused {other:?}"),
                }
                prop_assert!(refunded <= total);
            }
            prop_assert_eq!(refunded, total);
            for line in &basis.lines {
                prop_assert_eq!(taken.units.get(&line.line_id).copied().unwrap_or(0), line.quantity);
            }
        }

        /// Whatever is asked, an accepted refund never takes the sum past
        /// the captured amount.
        #[test]
        fn accepted_amounts_never_pass_the_captured_amount(
            captured in 1i64..100_000,
            asks in proptest::collection::vec(1i64..40_000, 1..30),
        ) {
            let basis = RefundBasis { prices_include_tax: true, shipping: 0, shipping_tax: 0, lines: vec![] };
            let mut taken = Taken::default();
            for amount in asks {
                if let Ok(priced) = price_refund(&basis, &taken, &RefundAsk::Amount(amount), captured) {
                    taken = take(&taken, &priced);
                }
                prop_assert!(taken.amount <= captured);
            }
        }
    }
}

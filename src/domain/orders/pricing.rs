//! Pricing an order from catalog snapshots: line totals and the order
//! total in integer minor units, with every refusal named by line.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::catalog::stock::StockLine;
use crate::domain::validation::ValidationErrors;

/// What the catalog says about a product at order time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSnapshot {
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub is_active: bool,
}

/// A priced order line, as stored on the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i32,
    pub line_total: i64,
    /// This line's share of the order's discount (0 without one).
    pub discount: i64,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedOrder {
    pub lines: Vec<OrderLine>,
    pub total: i64,
    pub currency: String,
}

/// Prices `lines` (already merged, see `normalize_lines`) against the
/// snapshots. `positions` maps each product to the index of its first line
/// in the request, so errors point at what the client sent.
pub fn price_order(
    lines: &[StockLine],
    snapshots: &HashMap<Uuid, PriceSnapshot>,
    positions: &HashMap<Uuid, usize>,
) -> Result<PricedOrder, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut priced = Vec::with_capacity(lines.len());
    let mut currency: Option<String> = None;
    let mut total: i64 = 0;
    // In the client's order: the first line sets the currency, and the
    // order's lines read as they were sent.
    let mut ordered: Vec<&StockLine> = lines.iter().collect();
    ordered.sort_by_key(|l| positions.get(&l.product_id).copied().unwrap_or(usize::MAX));
    for line in ordered {
        let field = format!(
            "items.{}.product_id",
            positions.get(&line.product_id).copied().unwrap_or(0)
        );
        let Some(snapshot) = snapshots.get(&line.product_id) else {
            errors.add(&field, "unknown", "no such product");
            continue;
        };
        if !snapshot.is_active {
            errors.add(&field, "inactive", "this product is not for sale");
            continue;
        }
        match &currency {
            None => currency = Some(snapshot.currency.clone()),
            Some(c) if *c != snapshot.currency => {
                errors.add(
                    &field,
                    "currency_mismatch",
                    format!("priced in {}, the order in {c}", snapshot.currency),
                );
                continue;
            }
            Some(_) => {}
        }
        let Some(line_total) = snapshot.price.checked_mul(i64::from(line.quantity)) else {
            errors.add(&field, "out_of_range", "line total too large");
            continue;
        };
        total = match total.checked_add(line_total) {
            Some(t) => t,
            None => {
                errors.add("items", "out_of_range", "order total too large");
                continue;
            }
        };
        priced.push(OrderLine {
            product_id: line.product_id,
            name: snapshot.name.clone(),
            unit_price: snapshot.price,
            quantity: line.quantity,
            line_total,
            discount: 0,
        });
    }
    errors.into_result()?;
    Ok(PricedOrder {
        lines: priced,
        total,
        currency: currency.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(price: i64, currency: &str, active: bool) -> PriceSnapshot {
        PriceSnapshot {
            name: "P".into(),
            price,
            currency: currency.into(),
            is_active: active,
        }
    }

    #[test]
    fn totals_are_integer_sums_of_lines() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let snaps = HashMap::from([(a, snap(1999, "EUR", true)), (b, snap(250, "EUR", true))]);
        let lines = [
            StockLine {
                product_id: a,
                quantity: 3,
            },
            StockLine {
                product_id: b,
                quantity: 2,
            },
        ];
        let order = price_order(&lines, &snaps, &HashMap::new()).expect("priced");
        assert_eq!(order.total, 1999 * 3 + 500);
        assert_eq!(order.lines[0].line_total, 5997);
        assert_eq!(order.currency, "EUR");
    }

    #[test]
    fn unknown_inactive_and_mixed_currency_lines_are_named() {
        let (a, b, c, d) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let snaps = HashMap::from([
            (a, snap(100, "EUR", true)),
            (b, snap(100, "USD", true)),
            (c, snap(100, "EUR", false)),
        ]);
        let positions = HashMap::from([(a, 0), (b, 1), (c, 2), (d, 3)]);
        let lines: Vec<_> = [a, b, c, d]
            .iter()
            .map(|&product_id| StockLine {
                product_id,
                quantity: 1,
            })
            .collect();
        let e = price_order(&lines, &snaps, &positions).expect_err("refused");
        let found: Vec<_> = e
            .errors()
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                ("items.1.product_id", "currency_mismatch"),
                ("items.2.product_id", "inactive"),
                ("items.3.product_id", "unknown")
            ]
        );
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let a = Uuid::from_u128(1);
        let snaps = HashMap::from([(a, snap(i64::MAX / 2, "EUR", true))]);
        let lines = [StockLine {
            product_id: a,
            quantity: 3,
        }];
        assert!(price_order(&lines, &snaps, &HashMap::new()).is_err());
    }
}

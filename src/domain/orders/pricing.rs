//! Pricing an order from catalog snapshots: line totals and the order
//! total in integer minor units, with every refusal named by line.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::catalog::stock::StockLine;
use crate::domain::catalog::variant::OptionValues;
use crate::domain::validation::ValidationErrors;

/// What the catalog says about a variant at order time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSnapshot {
    pub product_id: Uuid,
    pub name: String,
    pub sku: String,
    pub options: OptionValues,
    pub price: i64,
    pub currency: String,
    pub is_active: bool,
    /// What shipping weighs it at.
    pub weight_grams: i32,
    /// Whether it ships (false for a gift card or a download).
    pub requires_shipping: bool,
    /// Its product's tax class.
    pub tax_class: String,
}

/// A priced order line, as stored on the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    /// The variant sold (a product's default variant has the product's id).
    pub variant_id: Uuid,
    pub name: String,
    /// `None` on lines written before variants existed.
    pub sku: Option<String>,
    /// The variant's option values, `{}` for a default variant.
    pub options: OptionValues,
    pub unit_price: i64,
    pub quantity: i32,
    pub line_total: i64,
    /// This line's share of the order's discount (0 without one).
    pub discount: i64,
    /// The line's tax rate at the order's destination, in basis points.
    pub tax_rate_bp: i32,
    /// Tax on `line_total - discount` (included in it when prices include
    /// tax).
    pub tax: i64,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedOrder {
    pub lines: Vec<OrderLine>,
    pub total: i64,
    pub currency: String,
}

/// One item of an order request: the id it names (a variant's, or a
/// product's that has one variant), which field named it, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderItem {
    pub id: Uuid,
    /// Whether the client named it with `variant_id` (else `product_id`).
    pub by_variant: bool,
    pub quantity: i32,
}

impl OrderItem {
    /// The item as a stock line, before the catalog resolves its id.
    pub fn line(&self) -> StockLine {
        StockLine {
            variant_id: self.id,
            quantity: self.quantity,
        }
    }
}

/// Where a line came from in the request: the index of its first item and
/// the field that named it (`product_id` or `variant_id`), so errors point
/// at what the client sent.
pub type LinePositions = HashMap<Uuid, (usize, &'static str)>;

/// Prices `lines` (already merged by variant, see `normalize_lines`)
/// against the snapshots of their variants.
pub fn price_order(
    lines: &[StockLine],
    snapshots: &HashMap<Uuid, PriceSnapshot>,
    positions: &LinePositions,
) -> Result<PricedOrder, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut priced = Vec::with_capacity(lines.len());
    let mut currency: Option<String> = None;
    let mut total: i64 = 0;
    // In the client's order: the first line sets the currency, and the
    // order's lines read as they were sent.
    let mut ordered: Vec<&StockLine> = lines.iter().collect();
    ordered.sort_by_key(|l| positions.get(&l.variant_id).map_or(usize::MAX, |p| p.0));
    for line in ordered {
        let (index, named_by) = positions
            .get(&line.variant_id)
            .copied()
            .unwrap_or((0, "product_id"));
        let field = format!("items.{index}.{named_by}");
        let Some(snapshot) = snapshots.get(&line.variant_id) else {
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
            product_id: snapshot.product_id,
            variant_id: line.variant_id,
            name: snapshot.name.clone(),
            sku: Some(snapshot.sku.clone()),
            options: snapshot.options.clone(),
            unit_price: snapshot.price,
            quantity: line.quantity,
            line_total,
            discount: 0,
            tax_rate_bp: 0,
            tax: 0,
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
            product_id: Uuid::nil(),
            name: "P".into(),
            sku: "P-1".into(),
            options: OptionValues::new(),
            price,
            currency: currency.into(),
            is_active: active,
            weight_grams: 0,
            requires_shipping: true,
            tax_class: "standard".into(),
        }
    }

    #[test]
    fn totals_are_integer_sums_of_lines() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let snaps = HashMap::from([(a, snap(1999, "EUR", true)), (b, snap(250, "EUR", true))]);
        let lines = [
            StockLine {
                variant_id: a,
                quantity: 3,
            },
            StockLine {
                variant_id: b,
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
        let positions = HashMap::from([
            (a, (0, "product_id")),
            (b, (1, "product_id")),
            (c, (2, "variant_id")),
            (d, (3, "product_id")),
        ]);
        let lines: Vec<_> = [a, b, c, d]
            .iter()
            .map(|&variant_id| StockLine {
                variant_id,
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
                ("items.2.variant_id", "inactive"),
                ("items.3.product_id", "unknown")
            ]
        );
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let a = Uuid::from_u128(1);
        let snaps = HashMap::from([(a, snap(i64::MAX / 2, "EUR", true))]);
        let lines = [StockLine {
            variant_id: a,
            quantity: 3,
        }];
        assert!(price_order(&lines, &snaps, &HashMap::new()).is_err());
    }
}

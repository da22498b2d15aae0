//! Stock reservation rules: the lines of a reservation, and which of them
//! cannot be met.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::validation::ValidationErrors;

/// Largest quantity of one product in one reservation.
pub const MAX_LINE_QUANTITY: i64 = 10_000;
/// Most distinct products in one reservation.
pub const MAX_LINES: usize = 100;

/// One variant and how many of it to hold. Before the catalog resolves it,
/// `variant_id` may also be the id of a product that has one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StockLine {
    pub variant_id: Uuid,
    pub quantity: i32,
}

/// A line that cannot be met, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub variant_id: Uuid,
    pub requested: i32,
    /// Units on hand (0 for unknown or inactive products).
    pub available: i32,
    /// `insufficient_stock`, `inactive`, `unknown_product` or
    /// `variant_required` (a product with several variants was named).
    pub reason: &'static str,
}

/// What the database says about one requested product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    pub stock: i32,
    pub is_active: bool,
}

/// Merges lines of the same product (quantities add up), checks
/// quantities, and sorts by product id, the order rows are locked in, so
/// that two reservations never wait on each other in a cycle.
pub fn normalize_lines(lines: &[StockLine]) -> Result<Vec<StockLine>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if lines.is_empty() {
        errors.add("items", "empty", "at least one item is required");
    }
    let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        if line.quantity <= 0 {
            errors.add(
                &format!("items.{index}.quantity"),
                "out_of_range",
                "quantity must be at least 1",
            );
        }
        *merged.entry(line.variant_id).or_default() += i64::from(line.quantity);
    }
    if merged.len() > MAX_LINES {
        errors.add(
            "items",
            "too_many",
            format!("at most {MAX_LINES} distinct products"),
        );
    }
    for (variant_id, quantity) in &merged {
        if *quantity > MAX_LINE_QUANTITY {
            errors.add(
                "items",
                "out_of_range",
                format!("at most {MAX_LINE_QUANTITY} of product {variant_id}"),
            );
        }
    }
    errors.into_result()?;
    Ok(merged
        .into_iter()
        .map(|(variant_id, quantity)| StockLine {
            variant_id,
            // Bounded by MAX_LINE_QUANTITY above.
            quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
        })
        .collect())
}

/// What a line's id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// This variant.
    Variant(Uuid),
    /// A product with several variants: the line must name one.
    NeedsVariant,
    /// Nothing.
    Unknown,
}

/// Lines keyed by the ids clients sent, turned into lines keyed by variant
/// (merged and sorted again: a product id and its one variant's id are the
/// same unit), and the lines that name no single variant.
pub fn resolve_lines(
    lines: &[StockLine],
    resolved: &BTreeMap<Uuid, Resolved>,
) -> (Vec<StockLine>, Vec<Shortfall>) {
    let mut merged: BTreeMap<Uuid, i32> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for line in lines {
        let reason = match resolved.get(&line.variant_id) {
            Some(Resolved::Variant(id)) => {
                let total = merged.entry(*id).or_default();
                *total = total.saturating_add(line.quantity);
                continue;
            }
            Some(Resolved::NeedsVariant) => "variant_required",
            Some(Resolved::Unknown) | None => "unknown_product",
        };
        unresolved.push(Shortfall {
            variant_id: line.variant_id,
            requested: line.quantity,
            available: 0,
            reason,
        });
    }
    let lines = merged
        .into_iter()
        .map(|(variant_id, quantity)| StockLine {
            variant_id,
            quantity,
        })
        .collect();
    (lines, unresolved)
}

/// The lines that cannot be met from `levels` (all of them, not only the
/// first, so the caller can name every one).
pub fn shortfalls(lines: &[StockLine], levels: &BTreeMap<Uuid, StockLevel>) -> Vec<Shortfall> {
    lines
        .iter()
        .filter_map(|line| {
            let (available, reason) = match levels.get(&line.variant_id) {
                None => (0, "unknown_product"),
                Some(level) if !level.is_active => (0, "inactive"),
                Some(level) if level.stock < line.quantity => (level.stock, "insufficient_stock"),
                Some(_) => return None,
            };
            Some(Shortfall {
                variant_id: line.variant_id,
                requested: line.quantity,
                available,
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(variant_id: Uuid, quantity: i32) -> StockLine {
        StockLine {
            variant_id,
            quantity,
        }
    }

    #[test]
    fn duplicate_lines_merge_and_sort() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let lines = normalize_lines(&[line(a, 1), line(b, 2), line(a, 3)]).expect("valid");
        assert_eq!(lines, [line(b, 2), line(a, 4)]);
    }

    #[test]
    fn bad_quantities_and_empty_orders_are_refused() {
        assert!(normalize_lines(&[]).is_err());
        let e = normalize_lines(&[line(Uuid::new_v4(), 0), line(Uuid::new_v4(), -3)])
            .expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items.0.quantity", "items.1.quantity"]);
        let id = Uuid::new_v4();
        assert!(normalize_lines(&[line(id, 6000), line(id, 6000)]).is_err());
    }

    #[test]
    fn a_product_id_and_its_one_variant_are_one_line() {
        let (product, variant, shirt, ghost) = (
            Uuid::from_u128(9),
            Uuid::from_u128(5),
            Uuid::from_u128(7),
            Uuid::from_u128(8),
        );
        let resolved = BTreeMap::from([
            (product, Resolved::Variant(variant)),
            (variant, Resolved::Variant(variant)),
            (shirt, Resolved::NeedsVariant),
        ]);
        let (lines, unresolved) = resolve_lines(
            &[
                line(variant, 2),
                line(product, 3),
                line(shirt, 1),
                line(ghost, 1),
            ],
            &resolved,
        );
        assert_eq!(lines, [line(variant, 5)]);
        let reasons: Vec<_> = unresolved
            .iter()
            .map(|s| (s.variant_id, s.reason))
            .collect();
        assert_eq!(
            reasons,
            [(shirt, "variant_required"), (ghost, "unknown_product")]
        );
    }

    #[test]
    fn every_unmet_line_is_named() {
        let (ok, short, inactive, unknown) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let levels = BTreeMap::from([
            (
                ok,
                StockLevel {
                    stock: 5,
                    is_active: true,
                },
            ),
            (
                short,
                StockLevel {
                    stock: 1,
                    is_active: true,
                },
            ),
            (
                inactive,
                StockLevel {
                    stock: 9,
                    is_active: false,
                },
            ),
        ]);
        let lines = [
            line(ok, 5),
            line(short, 2),
            line(inactive, 1),
            line(unknown, 1),
        ];
        let found: Vec<_> = shortfalls(&lines, &levels)
            .into_iter()
            .map(|s| (s.variant_id, s.reason, s.available))
            .collect();
        assert_eq!(
            found,
            [
                (short, "insufficient_stock", 1),
                (inactive, "inactive", 0),
                (unknown, "unknown_product", 0)
            ]
        );
    }
}

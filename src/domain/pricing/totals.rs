//! An order's totals: the discount split over its lines, each line's tax
//! after its share of the discount, shipping and its tax, and what is
//! charged, in either tax mode.
//!
//! Rules (docs/API.md shows a worked example):
//! - the discount is split over the lines in proportion to their totals by
//!   the largest remainder (`promotions::allocate`), in a canonical order of
//!   the lines (by key), so the split — and every figure after it — does
//!   not depend on the order the lines come in;
//! - each line's tax is computed on its total after its discount share and
//!   rounded half to even in minor units; shipping's tax likewise on the
//!   shipping amount, at shipping's own rate; the order's tax is the sum of
//!   those, so lines always add up;
//! - prices exclusive of tax: tax = net × rate; total = subtotal −
//!   discount + shipping + tax;
//! - prices inclusive of tax: the tax is extracted, tax = net × rate ÷
//!   (1 + rate); total = subtotal − discount + shipping, which is the shelf
//!   price after discount.

use super::rounding::div_half_even;
use crate::domain::promotions::allocate;

/// Basis points in one whole (100 %).
pub const BP_PER_UNIT: u32 = 10_000;

/// Whether shelf prices include tax (as in the EU) or not (as in the US).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxMode {
    Inclusive,
    Exclusive,
}

/// One priced line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<K> {
    /// What identifies the line (a variant id): the canonical order.
    pub key: K,
    /// In minor units.
    pub unit_price: i64,
    pub quantity: i64,
    /// The line's tax rate, in basis points (2000 = 20 %).
    pub tax_bp: u32,
}

/// The chosen shipping: its price and its own tax rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipping {
    pub amount: i64,
    pub tax_bp: u32,
}

/// A line's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTotals<K> {
    pub key: K,
    /// unit price × quantity.
    pub line_total: i64,
    /// Its share of the order's discount.
    pub discount: i64,
    pub tax_bp: u32,
    /// Tax on `line_total − discount` (included in it when prices include
    /// tax).
    pub tax: i64,
}

/// An order's figures, lines in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals<K> {
    pub lines: Vec<LineTotals<K>>,
    pub subtotal: i64,
    /// At most the subtotal.
    pub discount: i64,
    pub shipping: i64,
    pub shipping_tax: i64,
    /// Σ line tax + shipping tax.
    pub tax: i64,
    pub total: i64,
}

/// The figures do not fit in 64 bits (or an input is negative): refused,
/// never wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the order's amounts are out of range")]
pub struct OutOfRange;

fn tax_on(net: i128, bp: u32, mode: TaxMode) -> i128 {
    let bp = i128::from(bp);
    let unit = i128::from(BP_PER_UNIT);
    match mode {
        TaxMode::Exclusive => div_half_even(net * bp, unit),
        TaxMode::Inclusive => div_half_even(net * bp, unit + bp),
    }
}

fn fit(v: i128) -> Result<i64, OutOfRange> {
    i64::try_from(v).map_err(|_| OutOfRange)
}

/// The totals of `lines` with an order discount of `discount` (capped at
/// the subtotal) and optional shipping.
pub fn price<K: Ord + Clone>(
    lines: &[Line<K>],
    discount: i64,
    shipping: Option<Shipping>,
    mode: TaxMode,
) -> Result<Totals<K>, OutOfRange> {
    if lines.iter().any(|l| l.unit_price < 0 || l.quantity < 0)
        || discount < 0
        || shipping.is_some_and(|s| s.amount < 0)
    {
        return Err(OutOfRange);
    }
    let line_totals: Vec<i64> = lines
        .iter()
        .map(|l| fit(i128::from(l.unit_price) * i128::from(l.quantity)))
        .collect::<Result<_, _>>()?;
    let subtotal = fit(line_totals.iter().map(|&t| i128::from(t)).sum())?;

    // The canonical order: by everything a line is, so equal lines are
    // interchangeable and any input order gives the same split.
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&lines[a], &lines[b]);
        (&x.key, x.unit_price, x.quantity, x.tax_bp).cmp(&(
            &y.key,
            y.unit_price,
            y.quantity,
            y.tax_bp,
        ))
    });
    let canonical: Vec<i64> = order.iter().map(|&i| line_totals[i]).collect();
    let shares = allocate(&canonical, discount);
    let mut line_discount = vec![0_i64; lines.len()];
    for (position, &i) in order.iter().enumerate() {
        line_discount[i] = shares[position];
    }
    let discount: i64 = line_discount.iter().sum();

    let mut out = Vec::with_capacity(lines.len());
    let mut tax: i128 = 0;
    for (i, l) in lines.iter().enumerate() {
        let net = i128::from(line_totals[i] - line_discount[i]);
        let line_tax = tax_on(net, l.tax_bp, mode);
        tax += line_tax;
        out.push(LineTotals {
            key: l.key.clone(),
            line_total: line_totals[i],
            discount: line_discount[i],
            tax_bp: l.tax_bp,
            tax: fit(line_tax)?,
        });
    }
    let (shipping_amount, shipping_tax) = match shipping {
        None => (0, 0),
        Some(s) => (s.amount, tax_on(i128::from(s.amount), s.tax_bp, mode)),
    };
    tax += shipping_tax;
    let charged_tax = match mode {
        TaxMode::Exclusive => tax,
        TaxMode::Inclusive => 0,
    };
    let total =
        i128::from(subtotal) - i128::from(discount) + i128::from(shipping_amount) + charged_tax;
    Ok(Totals {
        lines: out,
        subtotal,
        discount,
        shipping: shipping_amount,
        shipping_tax: fit(shipping_tax)?,
        tax: fit(tax)?,
        total: fit(total)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(key: u8, unit_price: i64, quantity: i64, tax_bp: u32) -> Line<u8> {
        Line {
            key,
            unit_price,
            quantity,
            tax_bp,
        }
    }

    /// The worked example of docs/API.md.
    #[test]
    fn worked_example_exclusive_and_inclusive() {
        // A 20.00 shirt ×2 at 20 %, a 9.99 book at 5.5 %, 5.00 off, 4.90
        // shipping at 20 %.
        let lines = [line(1, 2000, 2, 2000), line(2, 999, 1, 550)];
        let shipping = Some(Shipping {
            amount: 490,
            tax_bp: 2000,
        });
        let t = price(&lines, 500, shipping, TaxMode::Exclusive).expect("fits");
        assert_eq!(t.subtotal, 4999);
        // 500 split 4000:999 → 400.08 and 99.92 → 400 and 100.
        assert_eq!(
            t.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
            [400, 100]
        );
        // 3600 × 20 % = 720; 899 × 5.5 % = 49.445 → 49; 490 × 20 % = 98.
        assert_eq!(t.lines.iter().map(|l| l.tax).collect::<Vec<_>>(), [720, 49]);
        assert_eq!((t.shipping_tax, t.tax), (98, 867));
        assert_eq!(t.total, 4999 - 500 + 490 + 867);

        let t = price(&lines, 500, shipping, TaxMode::Inclusive).expect("fits");
        // 3600 × 2000 / 12000 = 600; 899 × 550 / 10550 = 46.87 → 47;
        // 490 × 2000 / 12000 = 81.67 → 82.
        assert_eq!(t.lines.iter().map(|l| l.tax).collect::<Vec<_>>(), [600, 47]);
        assert_eq!((t.shipping_tax, t.tax), (82, 729));
        assert_eq!(t.total, 4999 - 500 + 490);
    }

    #[test]
    fn out_of_range_is_refused() {
        assert_eq!(
            price(&[line(1, i64::MAX, 2, 0)], 0, None, TaxMode::Exclusive),
            Err(OutOfRange)
        );
        assert_eq!(
            price(&[line(1, -1, 1, 0)], 0, None, TaxMode::Exclusive),
            Err(OutOfRange)
        );
    }

    fn arb_lines(max_price: i64) -> impl Strategy<Value = Vec<Line<u8>>> {
        prop::collection::vec(
            (
                any::<u8>(),
                0..max_price,
                1_i64..20,
                prop::sample::select(vec![0_u32, 550, 700, 1000, 1900, 2000, 2100, 2500]),
            )
                .prop_map(|(key, p, q, bp)| line(key, p, q, bp)),
            0..12,
        )
    }

    fn arb_case() -> impl Strategy<Value = (Vec<Line<u8>>, i64, Option<Shipping>, TaxMode)> {
        // Currencies with 2 decimals (prices up to 1,000.00) and with none
        // (up to ¥1,000,000): the same minor-unit arithmetic, other scales.
        prop_oneof![Just(100_000_i64), Just(1_000_000_i64)].prop_flat_map(|max| {
            (
                arb_lines(max),
                0..max * 5,
                prop::option::of(
                    (0..max / 10, prop::sample::select(vec![0_u32, 2000, 1900]))
                        .prop_map(|(amount, tax_bp)| Shipping { amount, tax_bp }),
                ),
                prop_oneof![Just(TaxMode::Inclusive), Just(TaxMode::Exclusive)],
            )
        })
    }

    proptest! {
        /// Lines add up to the totals exactly, nothing is negative, the
        /// total follows the formula, and inclusive totals are the shelf
        /// price after discount.
        #[test]
        fn everything_adds_up((lines, discount, shipping, mode) in arb_case()) {
            let t = price(&lines, discount, shipping, mode).expect("fits");
            let subtotal: i64 = lines.iter().map(|l| l.unit_price * l.quantity).sum();
            prop_assert_eq!(t.subtotal, subtotal);
            prop_assert_eq!(t.discount, discount.min(subtotal));
            prop_assert_eq!(t.lines.iter().map(|l| l.discount).sum::<i64>(), t.discount);
            prop_assert_eq!(t.lines.iter().map(|l| l.tax).sum::<i64>() + t.shipping_tax, t.tax);
            let charged = if mode == TaxMode::Exclusive { t.tax } else { 0 };
            prop_assert_eq!(t.total, t.subtotal - t.discount + t.shipping + charged);
            if mode == TaxMode::Inclusive {
                prop_assert_eq!(t.total, subtotal - t.discount + shipping.map_or(0, |s| s.amount));
            }
            for l in &t.lines {
                prop_assert!(l.discount >= 0 && l.discount <= l.line_total);
                prop_assert!(l.tax >= 0);
                let net = i128::from(l.line_total - l.discount);
                let bp = i128::from(l.tax_bp);
                // Within half a unit of the exact tax.
                let (num, den) = match mode {
                    TaxMode::Exclusive => (net * bp, 10_000),
                    TaxMode::Inclusive => (net * bp, 10_000 + bp),
                };
                prop_assert!((2 * (num - i128::from(l.tax) * den)).abs() <= den);
                if mode == TaxMode::Inclusive {
                    prop_assert!(i128::from(l.tax) <= net);
                }
            }
            prop_assert!(t.total >= 0 && t.tax >= 0 && t.shipping_tax >= 0);
        }

        /// Whichever order the lines come in, every figure is the same.
        #[test]
        fn order_does_not_matter(
            (lines, discount, shipping, mode) in arb_case(),
            seed in any::<u64>(),
        ) {
            let mut shuffled = lines.clone();
            // A permutation from the seed (a rotation and a reversal).
            if !shuffled.is_empty() {
                let k = (seed as usize) % shuffled.len();
                shuffled.rotate_left(k);
                if seed & 1 == 1 {
                    shuffled.reverse();
                }
            }
            let a = price(&lines, discount, shipping, mode).expect("fits");
            let b = price(&shuffled, discount, shipping, mode).expect("fits");
            prop_assert_eq!((a.subtotal, a.discount, a.tax, a.total), (b.subtotal, b.discount, b.tax, b.total));
            let key = |l: &LineTotals<u8>| (l.key, l.line_total, l.tax_bp, l.discount, l.tax);
            let mut x: Vec<_> = a.lines.iter().map(key).collect();
            let mut y: Vec<_> = b.lines.iter().map(key).collect();
            x.sort_unstable();
            y.sort_unstable();
            prop_assert_eq!(x, y);
        }
    }
}

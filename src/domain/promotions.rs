//! Discount codes: the rules of a valid definition, whether one applies to a
//! cart, and how its discount is split across the lines, all in integer
//! minor units. No I/O: usage counts arrive as numbers.
//!
//! Rounding: a percent discount is the subtotal times the percentage,
//! rounded down to the minor unit (the shop never gives more than it
//! advertised). Any discount is then split across the lines in proportion
//! to their totals by the largest-remainder method, so the line discounts
//! add up to the discount exactly and no line goes below zero.

use chrono::{DateTime, Utc};

use crate::domain::validation::ValidationErrors;

/// Longest code accepted.
pub const MAX_CODE_CHARS: usize = 32;

/// How a promotion takes money off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `value` percent of the subtotal (1 to 100).
    Percent,
    /// `value` minor units of `currency`, at most the subtotal.
    Fixed,
}

/// A promotion as checked and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// Upper case; codes are compared case-insensitively.
    pub code: String,
    pub kind: Kind,
    pub value: i64,
    /// Only for `Fixed`.
    pub currency: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// In the cart's minor units.
    pub min_subtotal: i64,
    pub max_uses: Option<i64>,
    pub max_uses_per_customer: Option<i64>,
    pub active: bool,
}

/// A partial change of a promotion; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromotionPatch {
    pub code: Option<String>,
    pub kind: Option<Kind>,
    pub value: Option<i64>,
    pub currency: Option<Option<String>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub min_subtotal: Option<i64>,
    pub max_uses: Option<Option<i64>>,
    pub max_uses_per_customer: Option<Option<i64>>,
    pub active: Option<bool>,
}

impl PromotionPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == PromotionPatch::default()
    }

    /// `promotion` with this patch's fields.
    pub fn apply(self, promotion: Promotion) -> Promotion {
        Promotion {
            code: self.code.unwrap_or(promotion.code),
            kind: self.kind.unwrap_or(promotion.kind),
            value: self.value.unwrap_or(promotion.value),
            currency: self.currency.unwrap_or(promotion.currency),
            starts_at: self.starts_at.unwrap_or(promotion.starts_at),
            ends_at: self.ends_at.unwrap_or(promotion.ends_at),
            min_subtotal: self.min_subtotal.unwrap_or(promotion.min_subtotal),
            max_uses: self.max_uses.unwrap_or(promotion.max_uses),
            max_uses_per_customer: self
                .max_uses_per_customer
                .unwrap_or(promotion.max_uses_per_customer),
            active: self.active.unwrap_or(promotion.active),
        }
    }
}

/// The code as stored and compared: trimmed, upper case.
pub fn normalize_code(raw: &str) -> String {
    raw.trim().to_uppercase()
}

/// Checks a definition, naming every broken rule.
pub fn validate(promotion: Promotion) -> Result<Promotion, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut currency = None;
    let code = normalize_code(&promotion.code);
    let code_ok = !code.is_empty()
        && code.chars().count() <= MAX_CODE_CHARS
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !code_ok {
        errors.add(
            "code",
            "invalid",
            format!("code must be 1-{MAX_CODE_CHARS} letters, digits, hyphens or underscores"),
        );
    }
    match promotion.kind {
        Kind::Percent => {
            if !(1..=100).contains(&promotion.value) {
                errors.add("value", "out_of_range", "a percent value is 1 to 100");
            }
            if promotion.currency.is_some() {
                errors.add(
                    "currency",
                    "unknown_field",
                    "a percent promotion has no currency",
                );
            }
        }
        Kind::Fixed => {
            if promotion.value < 1 {
                errors.add(
                    "value",
                    "out_of_range",
                    "a fixed value is at least 1 minor unit",
                );
            }
            match &promotion.currency {
                None => errors.add("currency", "required", "a fixed promotion needs a currency"),
                Some(code) => {
                    currency = Some(crate::domain::catalog::text::check_currency(
                        &mut errors,
                        "currency",
                        code,
                    ));
                }
            }
        }
    }
    for (field, time) in [
        ("starts_at", promotion.starts_at),
        ("ends_at", promotion.ends_at),
    ] {
        if let Some(time) = time {
            crate::domain::validation::check_time(&mut errors, field, time);
        }
    }
    if let (Some(start), Some(end)) = (promotion.starts_at, promotion.ends_at) {
        if end <= start {
            errors.add("ends_at", "invalid", "ends_at must be after starts_at");
        }
    }
    if promotion.min_subtotal < 0 {
        errors.add(
            "min_subtotal",
            "out_of_range",
            "min_subtotal must not be negative",
        );
    }
    for (field, limit) in [
        ("max_uses", promotion.max_uses),
        ("max_uses_per_customer", promotion.max_uses_per_customer),
    ] {
        if limit.is_some_and(|n| n < 1) {
            errors.add(field, "out_of_range", format!("{field} must be at least 1"));
        }
    }
    errors.into_result()?;
    Ok(Promotion {
        code,
        currency: currency.or(promotion.currency),
        ..promotion
    })
}

/// Why a promotion does not apply; each has a stable code for the 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inapplicable {
    #[error("this promotion is not active")]
    Inactive,
    #[error("this promotion has not started")]
    NotStarted,
    #[error("this promotion has ended")]
    Expired,
    #[error("the subtotal is below this promotion's minimum of {minimum}")]
    BelowMinimum { minimum: i64 },
    #[error("this promotion is priced in {promotion}, the cart in {cart}")]
    CurrencyMismatch { promotion: String, cart: String },
    #[error("this promotion has been used up")]
    UsedUp,
    #[error("you have already used this promotion")]
    AlreadyUsed,
    /// The promotion was deleted after the code was applied.
    #[error("this promotion no longer exists; remove the code to check out")]
    Deleted,
}

impl Inapplicable {
    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Inapplicable::Inactive => "promotion_inactive",
            Inapplicable::NotStarted => "promotion_not_started",
            Inapplicable::Expired => "promotion_expired",
            Inapplicable::BelowMinimum { .. } => "promotion_below_minimum",
            Inapplicable::CurrencyMismatch { .. } => "promotion_currency_mismatch",
            Inapplicable::UsedUp => "promotion_used_up",
            Inapplicable::AlreadyUsed => "promotion_already_used",
            Inapplicable::Deleted => "promotion_deleted",
        }
    }
}

/// What a promotion is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub subtotal: i64,
    pub currency: &'a str,
    /// Uses counted so far, everyone's.
    pub uses: i64,
    /// Uses counted so far by this customer.
    pub customer_uses: i64,
}

/// Whether `promotion` applies in `context`; the first reason it does not.
pub fn check(promotion: &Promotion, context: &Context<'_>) -> Result<(), Inapplicable> {
    if !promotion.active {
        return Err(Inapplicable::Inactive);
    }
    if promotion.starts_at.is_some_and(|t| context.now < t) {
        return Err(Inapplicable::NotStarted);
    }
    if promotion.ends_at.is_some_and(|t| context.now >= t) {
        return Err(Inapplicable::Expired);
    }
    if let Some(currency) = &promotion.currency {
        if currency != context.currency {
            return Err(Inapplicable::CurrencyMismatch {
                promotion: currency.clone(),
                cart: context.currency.to_owned(),
            });
        }
    }
    if context.subtotal < promotion.min_subtotal {
        return Err(Inapplicable::BelowMinimum {
            minimum: promotion.min_subtotal,
        });
    }
    if promotion.max_uses.is_some_and(|max| context.uses >= max) {
        return Err(Inapplicable::UsedUp);
    }
    if promotion
        .max_uses_per_customer
        .is_some_and(|max| context.customer_uses >= max)
    {
        return Err(Inapplicable::AlreadyUsed);
    }
    Ok(())
}

/// The discount on `subtotal`: rounded down for a percent, capped at the
/// subtotal for a fixed amount; never negative.
pub fn discount(promotion: &Promotion, subtotal: i64) -> i64 {
    let subtotal = subtotal.max(0);
    match promotion.kind {
        Kind::Percent => {
            let off = i128::from(subtotal) * i128::from(promotion.value.clamp(0, 100)) / 100;
            // At most the subtotal, so it fits.
            i64::try_from(off).unwrap_or(subtotal)
        }
        Kind::Fixed => promotion.value.clamp(0, subtotal),
    }
}

/// Splits `discount` across lines in proportion to `line_totals`, by the
/// largest remainder (ties to the earlier line): the parts add up to
/// `discount` exactly and none exceeds its line. A discount above the sum
/// of the lines is capped at it.
pub fn allocate(line_totals: &[i64], discount: i64) -> Vec<i64> {
    let totals: Vec<i128> = line_totals.iter().map(|&t| i128::from(t.max(0))).collect();
    let sum: i128 = totals.iter().sum();
    let discount = i128::from(discount.max(0)).min(sum);
    if sum == 0 || discount == 0 {
        return vec![0; line_totals.len()];
    }
    let mut parts: Vec<i128> = totals.iter().map(|t| discount * t / sum).collect();
    let mut left = discount - parts.iter().sum::<i128>();
    let mut by_remainder: Vec<usize> = (0..totals.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(discount * totals[i] % sum));
    for i in by_remainder.into_iter().cycle() {
        if left == 0 {
            break;
        }
        if parts[i] < totals[i] {
            parts[i] += 1;
            left -= 1;
        }
    }
    // Each part is at most its line, which was an i64.
    parts
        .into_iter()
        .map(|p| i64::try_from(p).unwrap_or(i64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn percent(value: i64) -> Promotion {
        Promotion {
            code: " spring-10 ".into(),
            kind: Kind::Percent,
            value,
            currency: None,
            starts_at: None,
            ends_at: None,
            min_subtotal: 0,
            max_uses: None,
            max_uses_per_customer: None,
            active: true,
        }
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0)
            .single()
            .expect("date")
    }

    fn context(subtotal: i64) -> Context<'static> {
        Context {
            now: at(15),
            subtotal,
            currency: "EUR",
            uses: 0,
            customer_uses: 0,
        }
    }

    #[test]
    fn a_valid_definition_is_normalised_and_every_broken_rule_named() {
        let ok = validate(percent(10)).expect("valid");
        assert_eq!(ok.code, "SPRING-10");
        let bad = Promotion {
            code: "no spaces!".into(),
            value: 101,
            currency: Some("EUR".into()),
            starts_at: Some(at(10)),
            ends_at: Some(at(9)),
            min_subtotal: -1,
            max_uses: Some(0),
            max_uses_per_customer: Some(0),
            ..percent(10)
        };
        let fields: Vec<String> = validate(bad)
            .expect_err("invalid")
            .errors()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "code",
                "value",
                "currency",
                "ends_at",
                "min_subtotal",
                "max_uses",
                "max_uses_per_customer"
            ]
        );
        let fixed = Promotion {
            kind: Kind::Fixed,
            value: 0,
            ..percent(10)
        };
        let fields: Vec<String> = validate(fixed)
            .expect_err("invalid")
            .errors()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(fields, ["value", "currency"]);
    }

    #[test]
    fn each_reason_it_does_not_apply_comes_first_in_its_turn() {
        let p = percent(10);
        assert_eq!(check(&p, &context(100)), Ok(()));
        let inactive = Promotion {
            active: false,
            ..p.clone()
        };
        assert_eq!(check(&inactive, &context(100)), Err(Inapplicable::Inactive));
        let later = Promotion {
            starts_at: Some(at(16)),
            ..p.clone()
        };
        assert_eq!(check(&later, &context(100)), Err(Inapplicable::NotStarted));
        let over = Promotion {
            ends_at: Some(at(15)),
            ..p.clone()
        };
        assert_eq!(check(&over, &context(100)), Err(Inapplicable::Expired));
        let minimum = Promotion {
            min_subtotal: 101,
            ..p.clone()
        };
        assert_eq!(
            check(&minimum, &context(100)).map_err(|e| e.code()),
            Err("promotion_below_minimum")
        );
        let capped = Promotion {
            max_uses: Some(10),
            max_uses_per_customer: Some(1),
            ..p.clone()
        };
        let used = |uses, customer_uses| Context {
            uses,
            customer_uses,
            ..context(100)
        };
        assert_eq!(check(&capped, &used(9, 0)), Ok(()));
        assert_eq!(check(&capped, &used(10, 0)), Err(Inapplicable::UsedUp));
        assert_eq!(check(&capped, &used(3, 1)), Err(Inapplicable::AlreadyUsed));
        let dollars = Promotion {
            kind: Kind::Fixed,
            value: 500,
            currency: Some("USD".into()),
            ..p
        };
        assert_eq!(
            check(&dollars, &context(1000)).map_err(|e| e.code()),
            Err("promotion_currency_mismatch")
        );
    }

    #[test]
    fn percent_rounds_down_and_fixed_never_exceeds_the_subtotal() {
        assert_eq!(discount(&percent(10), 999), 99);
        assert_eq!(discount(&percent(100), 999), 999);
        assert_eq!(
            discount(&percent(15), i64::MAX),
            i64::MAX / 100 * 15 + (i64::MAX % 100) * 15 / 100
        );
        let fixed = Promotion {
            kind: Kind::Fixed,
            value: 500,
            currency: Some("EUR".into()),
            ..percent(1)
        };
        assert_eq!(discount(&fixed, 1200), 500);
        assert_eq!(discount(&fixed, 300), 300);
        assert_eq!(discount(&fixed, -5), 0);
    }

    #[test]
    fn allocation_adds_up_exactly_and_no_line_goes_negative() {
        // 10% of 1001 = 100, split 333/333/335 by the largest remainder.
        let lines = [333, 333, 335];
        let parts = allocate(&lines, discount(&percent(10), 1001));
        assert_eq!(parts.iter().sum::<i64>(), 100);
        assert_eq!(parts, [33, 33, 34]);
        // Three equal lines, one unit: the first gets it.
        assert_eq!(allocate(&[1, 1, 1], 1), [1, 0, 0]);
        // More than the lines hold: capped, every line to zero.
        assert_eq!(allocate(&[5, 7], 100), [5, 7]);
        assert_eq!(allocate(&[], 10), Vec::<i64>::new());
        assert_eq!(allocate(&[0, 0], 10), [0, 0]);
        // Huge lines do not overflow.
        let parts = allocate(&[i64::MAX, i64::MAX], i64::MAX);
        assert_eq!(
            parts.iter().map(|&p| i128::from(p)).sum::<i128>(),
            i128::from(i64::MAX)
        );
    }

    #[test]
    fn allocation_holds_for_many_shapes() {
        // A cheap exhaustive sweep instead of a property-test dependency.
        for a in 0..40_i64 {
            for b in 0..40_i64 {
                for d in 0..90_i64 {
                    let lines = [a, b, 7];
                    let parts = allocate(&lines, d);
                    let expected = d.min(a + b + 7);
                    assert_eq!(parts.iter().sum::<i64>(), expected, "{lines:?} {d}");
                    for (part, line) in parts.iter().zip(lines) {
                        assert!((0..=line).contains(part), "{lines:?} {d} {parts:?}");
                    }
                }
            }
        }
    }
}

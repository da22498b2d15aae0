//! Card checks done before a card reaches the provider: Luhn, expiry in the
//! future, CVC shape, and the brand and last four digits that are all the
//! shop keeps. The full number and the CVC are never stored or logged.

use std::fmt;

use crate::domain::validation::ValidationErrors;

/// A card as the client sent it. `Debug` shows only the last four digits.
#[derive(Clone)]
pub struct CardDetails {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: String,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDetails")
            .field("last4", &last4(&self.number))
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

/// What a checked card may be remembered as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub brand: &'static str,
    pub last4: String,
}

fn last4(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

/// Whether `digits` pass the Luhn checksum.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(10) else {
            return false;
        };
        sum += if i % 2 == 1 {
            let doubled = d * 2;
            if doubled > 9 {
                doubled - 9
            } else {
                doubled
            }
        } else {
            d
        };
    }
    !digits.is_empty() && sum % 10 == 0
}

/// The brand, from the number's leading digits.
pub fn brand(digits: &str) -> &'static str {
    let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
    match (prefix(1), prefix(2), prefix(4)) {
        (Some(4), _, _) => "visa",
        (_, Some(51..=55), _) | (_, _, Some(2221..=2720)) => "mastercard",
        (_, Some(34 | 37), _) => "amex",
        (_, _, Some(6011)) | (_, Some(65), _) => "discover",
        _ => "unknown",
    }
}

/// Checks a card against today's `(year, month)`; per-field errors under
/// `payment_method.`.
pub fn check_card(card: &CardDetails, today: (i64, i64)) -> Result<CardSummary, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let digits: String = card
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let number_ok = (12..=19).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && luhn_ok(&digits);
    if !number_ok {
        errors.add(
            "payment_method.card_number",
            "invalid",
            "not a valid card number",
        );
    }
    if !(1..=12).contains(&card.exp_month) {
        errors.add(
            "payment_method.exp_month",
            "invalid",
            "exp_month must be between 1 and 12",
        );
    } else if card.exp_year > today.0 + 50 {
        errors.add(
            "payment_method.exp_year",
            "invalid",
            "exp_year is too far in the future",
        );
    } else if (card.exp_year, card.exp_month) < today {
        errors.add("payment_method.exp_year", "expired", "the card has expired");
    }
    let cvc_len = if brand(&digits) == "amex" { 4 } else { 3 };
    let cvc_ok = card.cvc.len() == cvc_len && card.cvc.bytes().all(|b| b.is_ascii_digit());
    if !cvc_ok {
        errors.add(
            "payment_method.cvc",
            "invalid",
            format!("cvc must be {cvc_len} digits"),
        );
    }
    errors.into_result()?;
    Ok(CardSummary {
        brand: brand(&digits),
        last4: last4(&digits),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str) -> CardDetails {
        CardDetails {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    fn fields(result: Result<CardSummary, ValidationErrors>) -> Vec<String> {
        result
            .expect_err("refused")
            .errors()
            .iter()
            .map(|e| e.field.clone())
            .collect()
    }

    #[test]
    fn stripe_test_cards_pass_luhn_and_bad_digits_do_not() {
        for number in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000119",
            "5555555555554444",
        ] {
            assert!(luhn_ok(number), "{number}");
        }
        assert!(!luhn_ok("4242424242424241"));
        assert!(!luhn_ok(""));
    }

    #[test]
    fn a_good_card_is_summarised_by_brand_and_last_four() {
        let summary = check_card(&card("4242 4242 4242 4242"), (2026, 11)).expect("valid");
        assert_eq!(
            summary,
            CardSummary {
                brand: "visa",
                last4: "4242".into()
            }
        );
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            fields(check_card(&card("4242424242424241"), (2026, 11))),
            ["payment_method.card_number"]
        );
        let mut expired = card("4242424242424242");
        expired.exp_year = 2026;
        expired.exp_month = 10;
        assert_eq!(
            fields(check_card(&expired, (2026, 11))),
            ["payment_method.exp_year"]
        );
        expired.exp_month = 11;
        assert!(
            check_card(&expired, (2026, 11)).is_ok(),
            "valid through its month"
        );
        let mut bad = card("4242424242424242");
        bad.exp_month = 13;
        bad.cvc = "12a".into();
        assert_eq!(
            fields(check_card(&bad, (2026, 11))),
            ["payment_method.exp_month", "payment_method.cvc"]
        );
        let mut amex = card("378282246310005");
        amex.cvc = "123".into();
        assert_eq!(
            fields(check_card(&amex, (2026, 11))),
            ["payment_method.cvc"]
        );
    }

    #[test]
    fn debug_output_never_shows_the_number_or_cvc() {
        let shown = format!("{:?}", card("4242424242424242"));
        assert!(!shown.contains("42424242"));
        assert!(!shown.contains("123"));
        assert!(shown.contains("4242"));
    }
}

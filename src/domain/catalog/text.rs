//! Field checks shared by categories and products: slugs, names, currencies.

use iso_currency::Currency;

use crate::domain::validation::ValidationErrors;

/// Longest slug accepted.
pub const MAX_SLUG_CHARS: usize = 100;

/// Trims `value` and checks it has 1..=`max` characters.
pub fn required_text(
    errors: &mut ValidationErrors,
    field: &str,
    value: &str,
    max: usize,
) -> String {
    let value = value.trim().to_owned();
    if value.is_empty() {
        errors.add(field, "blank", format!("{field} must not be blank"));
    } else if value.chars().count() > max {
        errors.add(
            field,
            "too_long",
            format!("{field} must have at most {max} characters"),
        );
    }
    value
}

/// A slug is 1-100 characters of `a-z`, `0-9` and single inner hyphens.
pub fn check_slug(errors: &mut ValidationErrors, field: &str, slug: &str) {
    let ok = !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if !ok {
        errors.add(
            field,
            "invalid",
            "slug must be 1-100 characters of a-z, 0-9 and single hyphens inside",
        );
    } else if uuid::Uuid::parse_str(slug).is_ok() {
        // `/products/{id_or_slug}/` reads a UUID as an id, so such a slug
        // would name a product no one could reach by it.
        errors.add(
            field,
            "looks_like_id",
            "slug must not have the form of a UUID",
        );
    }
}

/// A slug made from a name: lower-case ASCII letters and digits, other runs
/// of characters turned into one hyphen.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    slug.chars()
        .take(MAX_SLUG_CHARS)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// Normalises a currency code to upper case and checks it is an ISO 4217
/// currency with minor units (fund and metal codes such as XAU are refused).
pub fn check_currency(errors: &mut ValidationErrors, field: &str, code: &str) -> String {
    let code = code.trim().to_ascii_uppercase();
    let known = Currency::from_code(&code).is_some_and(|c| c.exponent().is_some());
    if !known {
        errors.add(
            field,
            "invalid",
            "currency must be an ISO 4217 code such as EUR or USD",
        );
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_that_read_as_ids_are_refused() {
        for slug in [
            "550e8400-e29b-41d4-a716-446655440000",
            "550e8400e29b41d4a716446655440000",
        ] {
            let mut errors = ValidationErrors::new();
            check_slug(&mut errors, "slug", slug);
            assert_eq!(errors.errors()[0].code, "looks_like_id", "{slug}");
        }
        let mut errors = ValidationErrors::new();
        check_slug(&mut errors, "slug", "trail-runner-2");
        assert!(errors.errors().is_empty());
    }

    #[test]
    fn slugs_are_checked() {
        for good in ["shoes", "running-shoes-2", "a"] {
            let mut e = ValidationErrors::new();
            check_slug(&mut e, "slug", good);
            assert!(e.is_empty(), "{good}");
        }
        for bad in [
            "",
            "Shoes",
            "-a",
            "a-",
            "a--b",
            "a b",
            "é",
            &"a".repeat(101),
        ] {
            let mut e = ValidationErrors::new();
            check_slug(&mut e, "slug", bad);
            assert!(!e.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn slugify_makes_valid_slugs() {
        assert_eq!(slugify("  Running Shoes — Men's!  "), "running-shoes-men-s");
        assert_eq!(slugify("Ünïcode 42"), "n-code-42");
        let mut e = ValidationErrors::new();
        check_slug(&mut e, "slug", &slugify(&"word ".repeat(60)));
        assert!(e.is_empty());
    }

    #[test]
    fn currencies_must_be_iso_with_minor_units() {
        let mut e = ValidationErrors::new();
        assert_eq!(check_currency(&mut e, "currency", " eur "), "EUR");
        assert_eq!(check_currency(&mut e, "currency", "JPY"), "JPY");
        assert!(e.is_empty());
        for bad in ["EURO", "XYZ", "", "XAU", "12"] {
            let mut e = ValidationErrors::new();
            check_currency(&mut e, "currency", bad);
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn required_text_trims_and_bounds() {
        let mut e = ValidationErrors::new();
        assert_eq!(required_text(&mut e, "name", "  Shoe ", 10), "Shoe");
        required_text(&mut e, "name", "   ", 10);
        required_text(&mut e, "sku", "12345678901", 10);
        let codes: Vec<_> = e.errors().iter().map(|e| e.code).collect();
        assert_eq!(codes, ["blank", "too_long"]);
    }
}

//! The shop's shipping and tax configuration as admins write it: zones,
//! methods, tax classes and rates, checked before they are stored.

use uuid::Uuid;

use super::shipping::{Band, Rate, WeightBand};
use crate::domain::catalog::text::check_currency;
use crate::domain::validation::ValidationErrors;

/// Most countries a zone lists (there are 249 codes).
pub const MAX_COUNTRIES: usize = 249;
/// Most postal-code prefixes a zone lists.
pub const MAX_PREFIXES: usize = 1000;
/// Most bands a banded rate has.
pub const MAX_BANDS: usize = 50;
/// The largest amount, weight or threshold (as the catalog's prices).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The longest delivery estimate, in days.
pub const MAX_DAYS: i64 = 365;

pub(crate) fn text(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) -> String {
    let value = value.trim().to_owned();
    if value.is_empty() {
        errors.add(field, "blank", format!("{field} is required"));
    } else if value.chars().count() > max {
        errors.add(
            field,
            "too_long",
            format!("{field} must have at most {max} characters"),
        );
    }
    value
}

fn amount(errors: &mut ValidationErrors, field: &str, value: i64) -> i64 {
    if !(0..=MAX_AMOUNT).contains(&value) {
        errors.add(
            field,
            "out_of_range",
            format!("{field} must be 0 to {MAX_AMOUNT}"),
        );
    }
    value
}

/// Checks an ISO 3166-1 alpha-2 code (any case in, upper case out).
pub fn check_country(errors: &mut ValidationErrors, field: &str, code: &str) -> String {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 2 || isocountry::CountryCode::for_alpha2(&code).is_err() {
        errors.add(
            field,
            "invalid",
            "must be an ISO 3166-1 alpha-2 country code",
        );
    }
    code
}

/// Checks a tax-class code: 1-50 of `a-z 0-9 - _`.
pub fn check_class_code(errors: &mut ValidationErrors, field: &str, code: &str) -> String {
    let code = code.trim().to_owned();
    let ok = !code.is_empty()
        && code.len() <= 50
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        errors.add(
            field,
            "invalid",
            "a tax class is 1-50 of a-z, 0-9, '-' and '_'",
        );
    }
    code
}

/// A shipping zone as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDraft {
    pub name: String,
    pub countries: Vec<String>,
    pub postal_code_prefixes: Vec<String>,
}

impl ZoneDraft {
    /// Trimmed, upper-cased and deduplicated, or every problem by field.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = text(&mut errors, "name", &self.name, 200);
        if self.countries.is_empty() {
            errors.add("countries", "blank", "a zone covers at least one country");
        } else if self.countries.len() > MAX_COUNTRIES {
            errors.add("countries", "too_long", "too many countries");
        }
        let mut countries: Vec<String> = self
            .countries
            .iter()
            .enumerate()
            .map(|(i, c)| check_country(&mut errors, &format!("countries.{i}"), c))
            .collect();
        countries.sort_unstable();
        countries.dedup();
        if self.postal_code_prefixes.len() > MAX_PREFIXES {
            errors.add("postal_code_prefixes", "too_long", "too many prefixes");
        }
        let mut prefixes: Vec<String> = self
            .postal_code_prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                text(
                    &mut errors,
                    &format!("postal_code_prefixes.{i}"),
                    &p.to_uppercase(),
                    20,
                )
            })
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        errors.into_result()?;
        Ok(Self {
            name,
            countries,
            postal_code_prefixes: prefixes,
        })
    }
}

/// A shipping method as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDraft {
    pub zone_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    pub currency: String,
    pub rate: Rate,
    pub free_over: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub tax_class: Option<String>,
    pub is_active: bool,
}

/// A method, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodFields {
    pub zone_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    pub currency: String,
    pub rate: Rate,
    pub free_over: Option<i64>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    pub tax_class: String,
    pub is_active: bool,
}

/// Checks bands (their limit named `limit` as clients write it) and
/// returns them in ascending order.
fn check_bands(errors: &mut ValidationErrors, limit: &str, bands: &[Band]) -> Vec<Band> {
    if bands.is_empty() {
        errors.add("rate.bands", "blank", "a banded rate has at least one band");
    } else if bands.len() > MAX_BANDS {
        errors.add(
            "rate.bands",
            "too_long",
            format!("at most {MAX_BANDS} bands"),
        );
    }
    for (i, b) in bands.iter().enumerate() {
        amount(errors, &format!("rate.bands.{i}.{limit}"), b.up_to);
        amount(errors, &format!("rate.bands.{i}.amount"), b.amount);
    }
    let mut sorted = bands.to_vec();
    sorted.sort_by_key(|b| b.up_to);
    if sorted.windows(2).any(|w| w[0].up_to == w[1].up_to) {
        errors.add("rate.bands", "duplicate", "two bands end at the same value");
    }
    sorted
}

impl MethodDraft {
    /// The method's fields, bands in ascending order, or every problem.
    pub fn validate(self) -> Result<MethodFields, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = text(&mut errors, "name", &self.name, 200);
        // A blank carrier is no carrier.
        let carrier = self
            .carrier
            .filter(|c| !c.trim().is_empty())
            .map(|c| text(&mut errors, "carrier", &c, 100));
        let currency = check_currency(&mut errors, "currency", &self.currency);
        let rate = match self.rate {
            Rate::Flat { amount: a } => Rate::Flat {
                amount: amount(&mut errors, "rate.amount", a),
            },
            Rate::Weight { bands } => {
                let bands: Vec<Band> = bands.into_iter().map(Band::from).collect();
                Rate::Weight {
                    bands: check_bands(&mut errors, "up_to_grams", &bands)
                        .into_iter()
                        .map(WeightBand::from)
                        .collect(),
                }
            }
            Rate::Subtotal { bands } => Rate::Subtotal {
                bands: check_bands(&mut errors, "up_to", &bands),
            },
        };
        let free_over = self.free_over.map(|f| amount(&mut errors, "free_over", f));
        let mut days = |field: &str, d: Option<i64>| {
            d.map(|d| {
                if !(0..=MAX_DAYS).contains(&d) {
                    errors.add(
                        field,
                        "out_of_range",
                        format!("{field} must be 0 to {MAX_DAYS}"),
                    );
                }
                i32::try_from(d.clamp(0, MAX_DAYS)).unwrap_or(0)
            })
        };
        let min_days = days("min_days", self.min_days);
        let max_days = days("max_days", self.max_days);
        if let (Some(lo), Some(hi)) = (min_days, max_days) {
            if lo > hi {
                errors.add(
                    "max_days",
                    "out_of_range",
                    "max_days must be at least min_days",
                );
            }
        }
        let tax_class = match self.tax_class {
            Some(c) => check_class_code(&mut errors, "tax_class", &c),
            None => super::rules::STANDARD_CLASS.to_owned(),
        };
        errors.into_result()?;
        Ok(MethodFields {
            zone_id: self.zone_id,
            name,
            carrier,
            currency,
            rate,
            free_over,
            min_days,
            max_days,
            tax_class,
            is_active: self.is_active,
        })
    }
}

/// A tax rate as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRateDraft {
    pub tax_class: String,
    pub country: String,
    pub region: Option<String>,
    pub rate_bp: i64,
}

impl TaxRateDraft {
    /// Trimmed and upper-cased (the region too: `ny` is `NY`), or every
    /// problem.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let tax_class = check_class_code(&mut errors, "tax_class", &self.tax_class);
        let country = check_country(&mut errors, "country", &self.country);
        // A blank region is the whole country.
        let region = self
            .region
            .filter(|r| !r.trim().is_empty())
            .map(|r| text(&mut errors, "region", &r.to_uppercase(), 100));
        if !(0..=10_000).contains(&self.rate_bp) {
            errors.add(
                "rate_bp",
                "out_of_range",
                "rate_bp is in basis points, 0 to 10000 (100 %)",
            );
        }
        errors.into_result()?;
        Ok(Self {
            tax_class,
            country,
            region,
            rate_bp: self.rate_bp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &ValidationErrors) -> Vec<String> {
        let mut out: Vec<String> = e.errors().iter().map(|f| f.field.clone()).collect();
        out.sort();
        out
    }

    #[test]
    fn zones_are_normalised_and_checked() {
        let z = ZoneDraft {
            name: " EU ".into(),
            countries: vec!["fr".into(), "DE".into(), "FR".into()],
            postal_code_prefixes: vec!["sw1a".into()],
        }
        .validate()
        .expect("valid");
        assert_eq!(z.countries, ["DE", "FR"]);
        assert_eq!(z.postal_code_prefixes, ["SW1A"]);
        assert_eq!(z.name, "EU");
        let e = ZoneDraft {
            name: String::new(),
            countries: vec!["XX".into()],
            postal_code_prefixes: vec![" ".into()],
        }
        .validate()
        .expect_err("invalid");
        assert_eq!(
            fields(&e),
            ["countries.0", "name", "postal_code_prefixes.0"]
        );
    }

    #[test]
    fn methods_are_checked() {
        let draft = MethodDraft {
            zone_id: Uuid::nil(),
            name: "Standard".into(),
            carrier: Some("  ".into()),
            currency: "eur".into(),
            rate: Rate::Weight {
                bands: vec![
                    WeightBand {
                        up_to_grams: 5000,
                        amount: 900,
                    },
                    WeightBand {
                        up_to_grams: 1000,
                        amount: 500,
                    },
                ],
            },
            free_over: None,
            min_days: Some(1),
            max_days: Some(3),
            tax_class: None,
            is_active: true,
        };
        let m = draft.clone().validate().expect("valid");
        assert_eq!(m.currency, "EUR");
        assert_eq!(m.carrier, None);
        assert_eq!(m.tax_class, "standard");
        let Rate::Weight { bands } = &m.rate else {
            panic!("kind kept")
        };
        assert_eq!(bands[0].up_to_grams, 1000);
        let bad = MethodDraft {
            name: " ".into(),
            currency: "XXXX".into(),
            rate: Rate::Subtotal { bands: vec![] },
            free_over: Some(-1),
            min_days: Some(5),
            max_days: Some(2),
            tax_class: Some("Bad Class".into()),
            ..draft
        };
        let e = bad.validate().expect_err("invalid");
        assert_eq!(
            fields(&e),
            [
                "currency",
                "free_over",
                "max_days",
                "name",
                "rate.bands",
                "tax_class"
            ]
        );
    }

    #[test]
    fn rates_are_checked() {
        let r = TaxRateDraft {
            tax_class: "standard".into(),
            country: "us".into(),
            region: Some("ny".into()),
            rate_bp: 888,
        }
        .validate()
        .expect("valid");
        assert_eq!(
            (r.country.as_str(), r.region.as_deref()),
            ("US", Some("NY"))
        );
        let e = TaxRateDraft {
            tax_class: String::new(),
            country: "ZZ".into(),
            region: None,
            rate_bp: 10_001,
        }
        .validate()
        .expect_err("invalid");
        assert_eq!(fields(&e), ["country", "rate_bp", "tax_class"]);
    }
}

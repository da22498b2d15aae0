//! Shipping addresses.

use serde::{Deserialize, Serialize};

use crate::domain::validation::ValidationErrors;

/// A postal address, validated and trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    #[schema(max_length = 200, pattern = "[^ \\t\\n\\r]")]
    pub name: String,
    #[schema(max_length = 200, pattern = "[^ \\t\\n\\r]")]
    pub line1: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub line2: String,
    #[schema(max_length = 100, pattern = "[^ \\t\\n\\r]")]
    pub city: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub region: String,
    #[schema(max_length = 20, pattern = "[^ \\t\\n\\r]")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 (any case in, upper case out).
    #[schema(example = "FR", pattern = "^[A-Za-z]{2}$")]
    pub country: String,
    #[serde(default)]
    #[schema(max_length = 40)]
    pub phone: String,
}

impl ShippingAddress {
    /// Trims every field and checks lengths and the country code. Field
    /// paths are prefixed `shipping_address.`.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        self.validate_at("shipping_address.")
    }

    /// As [`Self::validate`], with field paths prefixed `prefix` (`""` for
    /// an address that is the whole body).
    pub fn validate_at(self, prefix: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut field = |name: &str, value: String, required: bool, max: usize| {
            let value = value.trim().to_owned();
            let path = format!("{prefix}{name}");
            if required && value.is_empty() {
                errors.add(&path, "blank", format!("{name} is required"));
            } else if value.chars().count() > max {
                errors.add(
                    &path,
                    "too_long",
                    format!("{name} must have at most {max} characters"),
                );
            }
            value
        };
        let address = ShippingAddress {
            name: field("name", self.name, true, 200),
            line1: field("line1", self.line1, true, 200),
            line2: field("line2", self.line2, false, 200),
            city: field("city", self.city, true, 100),
            region: field("region", self.region, false, 100),
            postal_code: field("postal_code", self.postal_code, true, 20),
            country: field("country", self.country.to_ascii_uppercase(), true, 64),
            phone: field("phone", self.phone, false, 40),
        };
        // Officially assigned codes only, from a maintained list: "XX" or
        // "EU" cannot be shipped to.
        let country_ok = address.country.len() == 2
            && isocountry::CountryCode::for_alpha2(&address.country).is_ok();
        if !address.country.is_empty() && !country_ok {
            errors.add(
                &format!("{prefix}country"),
                "invalid",
                "country must be an ISO 3166-1 alpha-2 code",
            );
        }
        errors.into_result()?;
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: " Ann Lee ".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Lyon".into(),
            region: String::new(),
            postal_code: "69001".into(),
            country: "fr".into(),
            phone: String::new(),
        }
    }

    #[test]
    fn countries_must_be_assigned_iso_codes() {
        for bad in ["XX", "ZZ", "F", "FRA", "1A"] {
            let mut a = address();
            a.country = bad.into();
            assert!(a.validate().is_err(), "{bad} accepted");
        }
        for good in ["de", "US", "jp", "GB"] {
            let mut a = address();
            a.country = good.into();
            assert!(a.validate().is_ok(), "{good} refused");
        }
    }

    #[test]
    fn valid_addresses_are_trimmed_and_normalised() {
        let a = address().validate().expect("valid");
        assert_eq!(a.name, "Ann Lee");
        assert_eq!(a.country, "FR");
    }

    #[test]
    fn problems_are_named_by_path() {
        let mut bad = address();
        bad.city = "  ".into();
        bad.country = "FRA".into();
        let e = bad.validate().expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["shipping_address.city", "shipping_address.country"]
        );
    }
}

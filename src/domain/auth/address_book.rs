//! A customer's address book: the postal fields of an order's shipping
//! address, plus which address is the default for shipping and for
//! billing (at most one of each per customer).

use serde::Deserialize;

use crate::domain::orders::address::ShippingAddress;
use crate::domain::validation::ValidationErrors;

/// Most addresses one customer may keep.
pub const MAX_ADDRESSES: i64 = 20;

/// An address as the book holds it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookAddress {
    pub address: ShippingAddress,
    pub is_default_shipping: bool,
    pub is_default_billing: bool,
}

/// A new address (`POST /auth/me/addresses/`). A customer's first address
/// becomes both defaults unless the body says otherwise.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressDraft {
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
    #[serde(default)]
    pub is_default_shipping: Option<bool>,
    #[serde(default)]
    pub is_default_billing: Option<bool>,
}

impl AddressDraft {
    /// Checks and trims the fields; `first` says whether the book is empty
    /// (its first address is the default of both unless set otherwise).
    pub fn validate(self, first: bool) -> Result<BookAddress, ValidationErrors> {
        let address = ShippingAddress {
            name: self.name,
            line1: self.line1,
            line2: self.line2,
            city: self.city,
            region: self.region,
            postal_code: self.postal_code,
            country: self.country,
            phone: self.phone,
        }
        .validate_at("")?;
        Ok(BookAddress {
            address,
            is_default_shipping: self.is_default_shipping.unwrap_or(first),
            is_default_billing: self.is_default_billing.unwrap_or(first),
        })
    }
}

/// A partial change (`PATCH`): absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressPatch {
    #[schema(max_length = 200, pattern = "[^ \\t\\n\\r]")]
    pub name: Option<String>,
    #[schema(max_length = 200, pattern = "[^ \\t\\n\\r]")]
    pub line1: Option<String>,
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    #[schema(max_length = 100, pattern = "[^ \\t\\n\\r]")]
    pub city: Option<String>,
    #[schema(max_length = 100)]
    pub region: Option<String>,
    #[schema(max_length = 20, pattern = "[^ \\t\\n\\r]")]
    pub postal_code: Option<String>,
    #[schema(example = "FR", pattern = "^[A-Za-z]{2}$")]
    pub country: Option<String>,
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    pub is_default_shipping: Option<bool>,
    pub is_default_billing: Option<bool>,
}

impl AddressPatch {
    /// The address after the change, validated.
    pub fn apply(self, current: &BookAddress) -> Result<BookAddress, ValidationErrors> {
        let a = &current.address;
        AddressDraft {
            name: self.name.unwrap_or_else(|| a.name.clone()),
            line1: self.line1.unwrap_or_else(|| a.line1.clone()),
            line2: self.line2.unwrap_or_else(|| a.line2.clone()),
            city: self.city.unwrap_or_else(|| a.city.clone()),
            region: self.region.unwrap_or_else(|| a.region.clone()),
            postal_code: self.postal_code.unwrap_or_else(|| a.postal_code.clone()),
            country: self.country.unwrap_or_else(|| a.country.clone()),
            phone: self.phone.unwrap_or_else(|| a.phone.clone()),
            is_default_shipping: Some(
                self.is_default_shipping
                    .unwrap_or(current.is_default_shipping),
            ),
            is_default_billing: Some(
                self.is_default_billing
                    .unwrap_or(current.is_default_billing),
            ),
        }
        .validate(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> AddressDraft {
        serde_json::from_value(serde_json::json!({
            "name": " Ann Lee ", "line1": "1 Main St", "city": "Lyon",
            "postal_code": "69001", "country": "fr"
        }))
        .expect("draft")
    }

    #[test]
    fn the_first_address_is_both_defaults_unless_told_otherwise() {
        let first = draft().validate(true).expect("valid");
        assert!(first.is_default_shipping && first.is_default_billing);
        assert_eq!(first.address.country, "FR");
        assert_eq!(first.address.name, "Ann Lee");
        let later = draft().validate(false).expect("valid");
        assert!(!later.is_default_shipping && !later.is_default_billing);
        let mut no = draft();
        no.is_default_billing = Some(false);
        let first = no.validate(true).expect("valid");
        assert!(first.is_default_shipping && !first.is_default_billing);
    }

    #[test]
    fn errors_name_the_field_itself() {
        let mut bad = draft();
        bad.city = " ".into();
        bad.country = "XX".into();
        let errors = bad.validate(false).expect_err("invalid");
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["city", "country"]);
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name() {
        let current = draft().validate(true).expect("valid");
        let patch = AddressPatch {
            city: Some("Paris".into()),
            is_default_billing: Some(false),
            ..AddressPatch::default()
        };
        let next = patch.apply(&current).expect("valid");
        assert_eq!(next.address.city, "Paris");
        assert_eq!(next.address.line1, "1 Main St");
        assert!(next.is_default_shipping && !next.is_default_billing);
    }
}

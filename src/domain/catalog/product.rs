//! Product rules: every field's bounds, and partial updates that are
//! validated as the whole product they produce.

use uuid::Uuid;

use super::text::{check_currency, check_slug, required_text, slugify};
use crate::domain::validation::ValidationErrors;

/// Longest product name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest SKU.
pub const MAX_SKU_CHARS: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Highest price, in minor units (ten billion major units).
pub const MAX_PRICE: i64 = 1_000_000_000_000;
/// Highest stock count.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Most tags on one product.
pub const MAX_TAGS: usize = 20;
/// Longest tag.
pub const MAX_TAG_CHARS: usize = 40;

/// A product's editable fields, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFields {
    pub name: String,
    pub slug: String,
    pub sku: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub tags: Vec<String>,
    pub is_active: bool,
}

/// A product's fields as the client sent them, before validation. On create
/// and full update, absent optional fields take their defaults.
#[derive(Debug, Clone, Default)]
pub struct ProductDraft {
    pub name: String,
    pub slug: Option<String>,
    pub sku: String,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub tags: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// A partial update: `None` leaves a field as it is; `category_id:
/// Some(None)` removes the category.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<Option<Uuid>>,
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub stock: Option<i64>,
    pub tags: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

impl ProductPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.slug.is_none()
            && self.sku.is_none()
            && self.description.is_none()
            && self.category_id.is_none()
            && self.price.is_none()
            && self.currency.is_none()
            && self.stock.is_none()
            && self.tags.is_none()
            && self.is_active.is_none()
    }

    /// The draft that results from applying this patch to `current`.
    pub fn apply(self, current: &ProductFields) -> ProductDraft {
        ProductDraft {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            slug: Some(self.slug.unwrap_or_else(|| current.slug.clone())),
            sku: self.sku.unwrap_or_else(|| current.sku.clone()),
            description: Some(
                self.description
                    .unwrap_or_else(|| current.description.clone()),
            ),
            category_id: self.category_id.unwrap_or(current.category_id),
            price: self.price.unwrap_or(current.price),
            currency: self.currency.unwrap_or_else(|| current.currency.clone()),
            stock: self.stock.unwrap_or(current.stock),
            tags: Some(self.tags.unwrap_or_else(|| current.tags.clone())),
            is_active: Some(self.is_active.unwrap_or(current.is_active)),
        }
    }
}

/// Normalises tags (trimmed, lower-case, unique, sorted) and checks them.
pub fn normalize_tags(errors: &mut ValidationErrors, field: &str, tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags.iter().map(|t| t.trim().to_lowercase()).collect();
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        errors.add(field, "too_many", format!("at most {MAX_TAGS} tags"));
    }
    if out
        .iter()
        .any(|t| t.is_empty() || t.chars().count() > MAX_TAG_CHARS || t.contains(','))
    {
        errors.add(
            field,
            "invalid",
            format!("tags must be 1-{MAX_TAG_CHARS} characters without commas"),
        );
    }
    out
}

impl ProductDraft {
    /// Validates every field, reporting all problems at once.
    pub fn validate(self) -> Result<ProductFields, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = required_text(&mut errors, "name", &self.name, MAX_NAME_CHARS);
        // A slug derived from a blank name is not a second problem to report.
        let derived = self.slug.is_none();
        let slug = self
            .slug
            .map_or_else(|| slugify(&name), |s| s.trim().to_owned());
        if !(derived && name.is_empty()) {
            check_slug(&mut errors, "slug", &slug);
        }
        let sku = required_text(&mut errors, "sku", &self.sku, MAX_SKU_CHARS);
        if !sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            errors.add(
                "sku",
                "invalid",
                "sku may hold A-Z, a-z, 0-9, '-', '_' and '.'",
            );
        }
        let description = self.description.unwrap_or_default().trim().to_owned();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            errors.add(
                "description",
                "too_long",
                format!("description must have at most {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
        if !(0..=MAX_PRICE).contains(&self.price) {
            errors.add(
                "price",
                "out_of_range",
                format!("price must be 0 to {MAX_PRICE} minor units"),
            );
        }
        let currency = check_currency(&mut errors, "currency", &self.currency);
        if !(0..=MAX_STOCK).contains(&self.stock) {
            errors.add(
                "stock",
                "out_of_range",
                format!("stock must be 0 to {MAX_STOCK}"),
            );
        }
        let tags = normalize_tags(&mut errors, "tags", &self.tags.unwrap_or_default());
        errors.into_result()?;
        Ok(ProductFields {
            name,
            slug,
            sku,
            description,
            category_id: self.category_id,
            price: self.price,
            currency,
            stock: self.stock,
            tags,
            is_active: self.is_active.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ProductDraft {
        ProductDraft {
            name: "Trail Runner".into(),
            sku: "TR-001".into(),
            price: 8999,
            currency: "eur".into(),
            stock: 5,
            tags: Some(vec![" Running".into(), "running".into(), "shoes".into()]),
            ..ProductDraft::default()
        }
    }

    #[test]
    fn a_valid_draft_is_normalised() {
        let p = draft().validate().expect("valid");
        assert_eq!(p.slug, "trail-runner");
        assert_eq!(p.currency, "EUR");
        assert_eq!(p.tags, ["running", "shoes"]);
        assert!(p.is_active);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let bad = ProductDraft {
            name: " ".into(),
            slug: Some("Not A Slug".into()),
            sku: "bad sku!".into(),
            description: Some("d".repeat(MAX_DESCRIPTION_CHARS + 1)),
            price: -1,
            currency: "EURO".into(),
            stock: -5,
            tags: Some(vec![String::new()]),
            ..ProductDraft::default()
        };
        let e = bad.validate().expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "slug",
                "sku",
                "description",
                "price",
                "currency",
                "stock",
                "tags"
            ]
        );
    }

    #[test]
    fn a_patch_is_validated_as_the_whole_product() {
        let current = draft().validate().expect("valid");
        let patch = ProductPatch {
            price: Some(100),
            category_id: Some(None),
            ..ProductPatch::default()
        };
        let next = patch.apply(&current).validate().expect("valid");
        assert_eq!(next.price, 100);
        assert_eq!(next.name, current.name);
        let bad = ProductPatch {
            stock: Some(-1),
            ..ProductPatch::default()
        };
        assert!(bad.apply(&current).validate().is_err());
        assert!(ProductPatch::default().is_empty());
    }

    #[test]
    fn too_many_tags_are_refused() {
        let mut e = ValidationErrors::new();
        let tags: Vec<String> = (0..=MAX_TAGS).map(|n| format!("t{n}")).collect();
        normalize_tags(&mut e, "tags", &tags);
        assert_eq!(e.errors()[0].code, "too_many");
    }
}

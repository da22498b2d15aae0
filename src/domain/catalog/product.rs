//! Product rules: every field's bounds, and partial updates that are
//! validated as the whole product they produce.

use uuid::Uuid;

use super::text::{check_currency, check_slug, required_text, slugify};
use super::variant::{
    check_options, check_sku, ProductOption, VariantDraft, VariantFields, VariantPatch,
    MAX_VARIANTS,
};
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
/// Longest tax-class code.
pub const MAX_TAX_CLASS_CHARS: usize = 50;
/// The tax class a product has unless it names another.
pub const DEFAULT_TAX_CLASS: &str = "standard";

/// A product's own fields (not its variants'), validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFields {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    /// ISO 4217 code every variant is priced in.
    pub currency: String,
    pub tags: Vec<String>,
    pub is_active: bool,
    pub options: Vec<ProductOption>,
    /// Tax-class code the product's variants are taxed under (the orders
    /// domain holds the classes and their rates; the catalog checks only
    /// the code's form, and an unknown class is charged at no rate).
    pub tax_class: String,
}

/// A new product and its variants, validated (combinations not yet checked
/// for repeats: see [`super::variant::repeated_combination`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub fields: ProductFields,
    /// 1 to 250; exactly one, naming no option, when there are no options.
    pub variants: Vec<VariantFields>,
}

/// A product's fields as the client sent them, before validation. On create
/// and full update, absent optional fields take their defaults.
///
/// `sku`, `price` and `stock` are the default variant's, for a product
/// without options (as before variants existed); a product with options
/// carries them on each of `variants` instead.
#[derive(Debug, Clone, Default)]
pub struct ProductDraft {
    pub name: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub currency: String,
    pub tags: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub options: Option<Vec<ProductOption>>,
    /// Tax-class code; default [`DEFAULT_TAX_CLASS`].
    pub tax_class: Option<String>,
    pub sku: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
    /// Only on create: the variants, made in the same transaction.
    pub variants: Option<Vec<VariantDraft>>,
}

/// What an update asks of a product's default variant (the one variant of
/// a product without options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultVariantChange {
    pub sku: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
}

impl DefaultVariantChange {
    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.sku.is_none() && self.price.is_none() && self.stock.is_none()
    }

    /// The fields named, for an error that refuses them.
    pub fn named(&self) -> Vec<&'static str> {
        [
            ("sku", self.sku.is_some()),
            ("price", self.price.is_some()),
            ("stock", self.stock.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// The variant patch that applies this change.
    pub fn into_patch(self) -> VariantPatch {
        VariantPatch {
            sku: self.sku,
            price: self.price,
            stock: self.stock,
            ..VariantPatch::default()
        }
    }
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
    pub options: Option<Vec<ProductOption>>,
    /// A new tax-class code.
    pub tax_class: Option<String>,
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
            && self.options.is_none()
            && self.tax_class.is_none()
    }

    /// The draft that results from applying this patch to `current`; the
    /// default variant's fields are only those the patch names.
    pub fn apply(self, current: &ProductFields) -> ProductDraft {
        ProductDraft {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            slug: Some(self.slug.unwrap_or_else(|| current.slug.clone())),
            description: Some(
                self.description
                    .unwrap_or_else(|| current.description.clone()),
            ),
            category_id: self.category_id.unwrap_or(current.category_id),
            currency: self.currency.unwrap_or_else(|| current.currency.clone()),
            tags: Some(self.tags.unwrap_or_else(|| current.tags.clone())),
            is_active: Some(self.is_active.unwrap_or(current.is_active)),
            options: Some(self.options.unwrap_or_else(|| current.options.clone())),
            tax_class: Some(self.tax_class.unwrap_or_else(|| current.tax_class.clone())),
            sku: self.sku,
            price: self.price,
            stock: self.stock,
            variants: None,
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

/// Trims a tax-class code and checks it is 1-50 characters of `a-z`,
/// `0-9`, `-` and `_` (the form the orders domain gives its classes).
/// Whether the class exists is not checked: it lives in another database.
pub fn check_tax_class(errors: &mut ValidationErrors, field: &str, code: &str) -> String {
    let code = code.trim().to_owned();
    let ok = !code.is_empty()
        && code.len() <= MAX_TAX_CLASS_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        errors.add(
            field,
            "invalid",
            format!("{field} must be 1-{MAX_TAX_CLASS_CHARS} characters of a-z, 0-9, '-' and '_'"),
        );
    }
    code
}

impl ProductDraft {
    /// The product's own fields, every problem recorded in `errors`.
    fn check_fields(&mut self, errors: &mut ValidationErrors) -> ProductFields {
        let name = required_text(errors, "name", &self.name, MAX_NAME_CHARS);
        // A slug derived from a blank name is not a second problem to report.
        let derived = self.slug.is_none();
        let slug = self
            .slug
            .take()
            .map_or_else(|| slugify(&name), |s| s.trim().to_owned());
        if !(derived && name.is_empty()) {
            check_slug(errors, "slug", &slug);
        }
        let description = self
            .description
            .take()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            errors.add(
                "description",
                "too_long",
                format!("description must have at most {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
        let currency = check_currency(errors, "currency", &self.currency);
        let tags = normalize_tags(errors, "tags", &self.tags.take().unwrap_or_default());
        let options = check_options(errors, "options", &self.options.take().unwrap_or_default());
        let tax_class = self.tax_class.take().map_or_else(
            || DEFAULT_TAX_CLASS.to_owned(),
            |c| check_tax_class(errors, "tax_class", &c),
        );
        ProductFields {
            name,
            slug,
            description,
            category_id: self.category_id,
            currency,
            tags,
            is_active: self.is_active.unwrap_or(true),
            options,
            tax_class,
        }
    }

    /// Validates a new product and its variants, reporting all problems at
    /// once.
    pub fn validate(mut self) -> Result<NewProduct, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let fields = self.check_fields(&mut errors);
        let variants = match self.variants.take() {
            None => {
                if !fields.options.is_empty() {
                    errors.add(
                        "variants",
                        "required",
                        "a product with options is created with its variants",
                    );
                }
                let missing: Vec<&str> = [
                    ("sku", self.sku.is_none()),
                    ("price", self.price.is_none()),
                    ("stock", self.stock.is_none()),
                ]
                .into_iter()
                .filter_map(|(field, missing)| missing.then_some(field))
                .collect();
                let default = VariantDraft {
                    sku: self.sku.unwrap_or_default(),
                    price: self.price.unwrap_or_default(),
                    stock: self.stock.unwrap_or_default(),
                    ..VariantDraft::default()
                };
                // A missing field is one problem, not also a blank or bad one.
                let mut found = ValidationErrors::new();
                let variant = default.check(&mut found, "", &[]);
                for e in found.errors() {
                    if !missing.contains(&e.field.as_str()) {
                        errors.add(&e.field, e.code, e.message.clone());
                    }
                }
                if fields.options.is_empty() {
                    for field in missing {
                        errors.add(field, "required", format!("{field} is required"));
                    }
                }
                vec![variant]
            }
            Some(drafts) => {
                for field in (DefaultVariantChange {
                    sku: self.sku,
                    price: self.price,
                    stock: self.stock,
                })
                .named()
                {
                    errors.add(
                        field,
                        "set_on_variants",
                        format!("with variants, {field} is set on each variant"),
                    );
                }
                if drafts.is_empty() || drafts.len() > MAX_VARIANTS {
                    errors.add(
                        "variants",
                        "out_of_range",
                        format!("a product has 1 to {MAX_VARIANTS} variants"),
                    );
                }
                drafts
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| d.check(&mut errors, &format!("variants.{i}."), &fields.options))
                    .collect()
            }
        };
        errors.into_result()?;
        Ok(NewProduct { fields, variants })
    }

    /// Validates a replaced or patched product: its own fields, and what it
    /// asks of its default variant (checked against the variants by the
    /// caller, which knows them).
    pub fn validate_change(
        mut self,
    ) -> Result<(ProductFields, DefaultVariantChange), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let fields = self.check_fields(&mut errors);
        if self.variants.is_some() {
            errors.add(
                "variants",
                "read_only",
                "variants change through /products/{id}/variants/",
            );
        }
        if let Some(sku) = &self.sku {
            check_sku(&mut errors, "sku", sku);
        }
        errors.into_result()?;
        Ok((
            fields,
            DefaultVariantChange {
                sku: self.sku.map(|s| s.trim().to_owned()),
                price: self.price,
                stock: self.stock,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::variant::OptionValues;

    fn draft() -> ProductDraft {
        ProductDraft {
            name: "Trail Runner".into(),
            sku: Some("TR-001".into()),
            price: Some(8999),
            currency: "eur".into(),
            stock: Some(5),
            tags: Some(vec![" Running".into(), "running".into(), "shoes".into()]),
            ..ProductDraft::default()
        }
    }

    #[test]
    fn a_valid_draft_is_normalised_with_one_default_variant() {
        let p = draft().validate().expect("valid");
        assert_eq!(p.fields.slug, "trail-runner");
        assert_eq!(p.fields.currency, "EUR");
        assert_eq!(p.fields.tags, ["running", "shoes"]);
        assert!(p.fields.is_active);
        assert_eq!(p.fields.tax_class, DEFAULT_TAX_CLASS);
        assert_eq!(p.variants.len(), 1);
        assert_eq!(p.variants[0].sku, "TR-001");
        assert_eq!(p.variants[0].price, 8999);
        assert!(p.variants[0].options.is_empty());
    }

    #[test]
    fn every_bad_field_is_reported() {
        let bad = ProductDraft {
            name: " ".into(),
            slug: Some("Not A Slug".into()),
            sku: Some("bad sku!".into()),
            description: Some("d".repeat(MAX_DESCRIPTION_CHARS + 1)),
            price: Some(-1),
            currency: "EURO".into(),
            stock: Some(-5),
            tags: Some(vec![String::new()]),
            tax_class: Some("Standard".into()),
            ..ProductDraft::default()
        };
        let e = bad.validate().expect_err("invalid");
        let mut fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "currency",
                "description",
                "name",
                "price",
                "sku",
                "slug",
                "stock",
                "tags",
                "tax_class"
            ]
        );
        let missing = ProductDraft {
            name: "Tent".into(),
            currency: "EUR".into(),
            ..ProductDraft::default()
        };
        let e = missing.validate().expect_err("invalid");
        let found: Vec<_> = e
            .errors()
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                ("sku", "required"),
                ("price", "required"),
                ("stock", "required")
            ]
        );
    }

    fn variant(sku: &str, size: &str) -> VariantDraft {
        VariantDraft {
            sku: sku.into(),
            options: OptionValues::from([("size".to_owned(), size.to_owned())]),
            price: 1000,
            stock: 1,
            ..VariantDraft::default()
        }
    }

    #[test]
    fn a_product_with_options_comes_with_its_variants() {
        let sized = || ProductDraft {
            name: "Tee".into(),
            currency: "EUR".into(),
            options: Some(vec![ProductOption {
                name: "size".into(),
                values: vec!["S".into(), "M".into()],
            }]),
            ..ProductDraft::default()
        };
        let e = sized().validate().expect_err("no variants");
        assert_eq!(e.errors()[0].field, "variants");
        let ok = ProductDraft {
            variants: Some(vec![variant("TEE-S", "S"), variant("TEE-M", "M")]),
            ..sized()
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.variants.len(), 2);
        let e = ProductDraft {
            price: Some(5),
            variants: Some(vec![variant("TEE-S", "S"), variant("TEE-X", "XL")]),
            ..sized()
        }
        .validate()
        .expect_err("invalid");
        let found: Vec<_> = e
            .errors()
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                ("price", "set_on_variants"),
                ("variants.1.options", "unknown_value")
            ]
        );
        let e = ProductDraft {
            variants: Some(vec![]),
            ..sized()
        }
        .validate()
        .expect_err("none");
        assert_eq!(e.errors()[0].code, "out_of_range");
    }

    #[test]
    fn a_patch_is_validated_as_the_whole_product() {
        let current = draft().validate().expect("valid").fields;
        let patch = ProductPatch {
            price: Some(100),
            category_id: Some(None),
            ..ProductPatch::default()
        };
        let (next, default) = patch.apply(&current).validate_change().expect("valid");
        assert_eq!(default.price, Some(100));
        assert_eq!(default.named(), ["price"]);
        assert_eq!(next.name, current.name);
        let bad = ProductPatch {
            sku: Some("no spaces".into()),
            ..ProductPatch::default()
        };
        assert!(bad.apply(&current).validate_change().is_err());
        assert!(ProductPatch::default().is_empty());
    }

    #[test]
    fn tax_classes_are_short_lowercase_codes() {
        let check = |code: &str| {
            let mut e = ValidationErrors::new();
            let out = check_tax_class(&mut e, "tax_class", code);
            (out, e.errors().iter().map(|e| e.code).collect::<Vec<_>>())
        };
        for ok in ["standard", "reduced-rate", "zero_0", " books "] {
            let (code, errors) = check(ok);
            assert_eq!(code, ok.trim());
            assert!(errors.is_empty(), "{ok:?}: {errors:?}");
        }
        let too_long = "a".repeat(MAX_TAX_CLASS_CHARS + 1);
        for bad in [
            "",
            " ",
            "Bad Class!",
            "Standard",
            "a.b",
            "é",
            too_long.as_str(),
        ] {
            assert_eq!(check(bad).1, ["invalid"], "{bad:?}");
        }
        assert!(check(&"a".repeat(MAX_TAX_CLASS_CHARS)).1.is_empty());
    }

    #[test]
    fn a_patch_keeps_or_replaces_the_tax_class() {
        let mut current = draft().validate().expect("valid").fields;
        current.tax_class = "reduced".into();
        let kept = ProductPatch {
            name: Some("Trail Runner 2".into()),
            ..ProductPatch::default()
        };
        let (next, _) = kept.apply(&current).validate_change().expect("valid");
        assert_eq!(next.tax_class, "reduced");
        let changed = ProductPatch {
            tax_class: Some("zero".into()),
            ..ProductPatch::default()
        };
        assert!(!changed.is_empty());
        let (next, _) = changed.apply(&current).validate_change().expect("valid");
        assert_eq!(next.tax_class, "zero");
        let bad = ProductPatch {
            tax_class: Some("Bad Class!".into()),
            ..ProductPatch::default()
        };
        let e = bad.apply(&current).validate_change().expect_err("invalid");
        assert_eq!(e.errors()[0].field, "tax_class");
        assert_eq!(e.errors()[0].code, "invalid");
    }

    #[test]
    fn too_many_tags_are_refused() {
        let mut e = ValidationErrors::new();
        let tags: Vec<String> = (0..=MAX_TAGS).map(|n| format!("t{n}")).collect();
        normalize_tags(&mut e, "tags", &tags);
        assert_eq!(e.errors()[0].code, "too_many");
    }
}

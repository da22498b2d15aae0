//! Variant rules: a product's options, each variant naming exactly one value
//! of each option, one variant per combination, and which option changes a
//! product with variants can take.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::product::{MAX_PRICE, MAX_SKU_CHARS, MAX_STOCK};
use super::text::required_text;
use crate::domain::validation::ValidationErrors;

/// Most options on one product.
pub const MAX_OPTIONS: usize = 3;
/// Longest option name.
pub const MAX_OPTION_NAME_CHARS: usize = 50;
/// Most values of one option.
pub const MAX_OPTION_VALUES: usize = 100;
/// Longest option value.
pub const MAX_OPTION_VALUE_CHARS: usize = 50;
/// Most variants of one product.
pub const MAX_VARIANTS: usize = 250;
/// Heaviest variant, in grams (ten tonnes).
pub const MAX_WEIGHT_GRAMS: i64 = 10_000_000;
/// Highest display position.
pub const MAX_POSITION: i64 = 10_000;

/// One of a product's options and its values, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductOption {
    /// 1-50 characters, unique within the product.
    pub name: String,
    /// 1-100 distinct values of 1-50 characters.
    pub values: Vec<String>,
}

/// A variant's choice of one value per option, by option name.
pub type OptionValues = BTreeMap<String, String>;

/// Trims and checks a product's options: 0-3, names unique, each with
/// 1-100 distinct values.
pub fn check_options(
    errors: &mut ValidationErrors,
    field: &str,
    options: &[ProductOption],
) -> Vec<ProductOption> {
    if options.len() > MAX_OPTIONS {
        errors.add(field, "too_many", format!("at most {MAX_OPTIONS} options"));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(options.len());
    for (index, option) in options.iter().enumerate() {
        let at = format!("{field}.{index}");
        let name = required_text(
            errors,
            &format!("{at}.name"),
            &option.name,
            MAX_OPTION_NAME_CHARS,
        );
        if name.chars().any(char::is_control) {
            errors.add(
                &format!("{at}.name"),
                "invalid",
                "option names hold no control characters",
            );
        }
        if !name.is_empty() && !names.insert(name.to_lowercase()) {
            errors.add(
                &format!("{at}.name"),
                "duplicate",
                format!("option {name:?} is named twice"),
            );
        }
        let values: Vec<String> = option.values.iter().map(|v| v.trim().to_owned()).collect();
        if values.is_empty() || values.len() > MAX_OPTION_VALUES {
            errors.add(
                &format!("{at}.values"),
                "out_of_range",
                format!("an option has 1 to {MAX_OPTION_VALUES} values"),
            );
        }
        if values.iter().any(|v| {
            v.is_empty()
                || v.chars().count() > MAX_OPTION_VALUE_CHARS
                || v.chars().any(char::is_control)
        }) {
            errors.add(
                &format!("{at}.values"),
                "invalid",
                format!("option values have 1 to {MAX_OPTION_VALUE_CHARS} characters, none a control character"),
            );
        }
        let distinct: BTreeSet<&String> = values.iter().collect();
        if distinct.len() != values.len() {
            errors.add(
                &format!("{at}.values"),
                "duplicate",
                "an option names each value once",
            );
        }
        out.push(ProductOption { name, values });
    }
    out
}

/// A variant's fields, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantFields {
    pub sku: String,
    pub options: OptionValues,
    /// In minor units of the product's currency.
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub stock: i32,
    pub weight_grams: i32,
    /// Whether the variant is shipped: `false` for digital goods and
    /// services, which shipping is neither charged for nor asked of.
    pub requires_shipping: bool,
    pub is_active: bool,
    pub position: i32,
}

impl VariantFields {
    /// Whether changing a variant from `self` to `after` can change which
    /// listings its product is on beyond what its stock and price totals
    /// say (which `store::refresh_totals` reports): its options (option
    /// filters and facets) or whether it counts at all. Anything else
    /// (price, stock, sku, weight, position) changes only its product's own
    /// data.
    pub fn reshapes_listings(&self, after: &VariantFields) -> bool {
        self.options != after.options || self.is_active != after.is_active
    }
}

/// A variant as the client sent it, before validation; absent optional
/// fields take their defaults.
#[derive(Debug, Clone, Default)]
pub struct VariantDraft {
    pub sku: String,
    pub options: OptionValues,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub stock: i64,
    pub weight_grams: Option<i64>,
    /// Default `true`.
    pub requires_shipping: Option<bool>,
    pub is_active: Option<bool>,
    pub position: Option<i64>,
}

/// A partial change of a variant: `None` leaves a field as it is;
/// `compare_at_price: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct VariantPatch {
    pub sku: Option<String>,
    pub options: Option<OptionValues>,
    pub price: Option<i64>,
    pub compare_at_price: Option<Option<i64>>,
    pub stock: Option<i64>,
    pub weight_grams: Option<i64>,
    /// A new `requires_shipping`.
    pub requires_shipping: Option<bool>,
    pub is_active: Option<bool>,
    pub position: Option<i64>,
}

impl VariantPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.sku.is_none()
            && self.options.is_none()
            && self.price.is_none()
            && self.compare_at_price.is_none()
            && self.stock.is_none()
            && self.weight_grams.is_none()
            && self.requires_shipping.is_none()
            && self.is_active.is_none()
            && self.position.is_none()
    }

    /// The draft that results from applying this patch to `current`.
    pub fn apply(self, current: &VariantFields) -> VariantDraft {
        VariantDraft {
            sku: self.sku.unwrap_or_else(|| current.sku.clone()),
            options: self.options.unwrap_or_else(|| current.options.clone()),
            price: self.price.unwrap_or(current.price),
            compare_at_price: self.compare_at_price.unwrap_or(current.compare_at_price),
            stock: self.stock.unwrap_or(i64::from(current.stock)),
            weight_grams: Some(self.weight_grams.unwrap_or(i64::from(current.weight_grams))),
            requires_shipping: Some(self.requires_shipping.unwrap_or(current.requires_shipping)),
            is_active: Some(self.is_active.unwrap_or(current.is_active)),
            position: Some(self.position.unwrap_or(i64::from(current.position))),
        }
    }
}

/// Checks a SKU: 1-64 characters of `A-Z a-z 0-9 - _ .`.
pub fn check_sku(errors: &mut ValidationErrors, field: &str, sku: &str) -> String {
    let sku = required_text(errors, field, sku, MAX_SKU_CHARS);
    if !sku
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        errors.add(
            field,
            "invalid",
            format!("{field} may hold A-Z, a-z, 0-9, '-', '_' and '.'"),
        );
    }
    sku
}

fn bounded(errors: &mut ValidationErrors, field: &str, value: i64, max: i64) -> i64 {
    if !(0..=max).contains(&value) {
        errors.add(field, "out_of_range", format!("{field} must be 0 to {max}"));
    }
    value.clamp(0, max)
}

/// Records an error at `field` unless `chosen` names exactly one listed value
/// of each of `options` and nothing else.
pub fn check_choice(
    errors: &mut ValidationErrors,
    field: &str,
    options: &[ProductOption],
    chosen: &OptionValues,
) {
    for option in options {
        match chosen.get(&option.name) {
            None => errors.add(
                field,
                "missing_option",
                format!("the variant must name a value of option {:?}", option.name),
            ),
            Some(value) if !option.values.contains(value) => errors.add(
                field,
                "unknown_value",
                format!("{value:?} is not a value of option {:?}", option.name),
            ),
            Some(_) => {}
        }
    }
    for name in chosen.keys() {
        if !options.iter().any(|o| &o.name == name) {
            errors.add(
                field,
                "unknown_option",
                format!("the product has no option {name:?}"),
            );
        }
    }
}

impl VariantDraft {
    /// Checks every field against the product's `options`, recording
    /// problems under `prefix` (e.g. `variants.2.`), and returns the fields
    /// (meaningful only when nothing was recorded).
    pub fn check(
        self,
        errors: &mut ValidationErrors,
        prefix: &str,
        options: &[ProductOption],
    ) -> VariantFields {
        let sku = check_sku(errors, &format!("{prefix}sku"), &self.sku);
        let chosen: OptionValues = self
            .options
            .into_iter()
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        check_choice(errors, &format!("{prefix}options"), options, &chosen);
        let price = bounded(errors, &format!("{prefix}price"), self.price, MAX_PRICE);
        let compare_at_price = self
            .compare_at_price
            .map(|p| bounded(errors, &format!("{prefix}compare_at_price"), p, MAX_PRICE));
        let stock = bounded(errors, &format!("{prefix}stock"), self.stock, MAX_STOCK);
        let weight = bounded(
            errors,
            &format!("{prefix}weight_grams"),
            self.weight_grams.unwrap_or(0),
            MAX_WEIGHT_GRAMS,
        );
        let position = bounded(
            errors,
            &format!("{prefix}position"),
            self.position.unwrap_or(0),
            MAX_POSITION,
        );
        VariantFields {
            sku,
            options: chosen,
            price,
            compare_at_price,
            // All bounded above, far below i32::MAX.
            stock: i32::try_from(stock).unwrap_or(i32::MAX),
            weight_grams: i32::try_from(weight).unwrap_or(i32::MAX),
            requires_shipping: self.requires_shipping.unwrap_or(true),
            is_active: self.is_active.unwrap_or(true),
            position: i32::try_from(position).unwrap_or(i32::MAX),
        }
    }

    /// [`VariantDraft::check`] on its own.
    pub fn validate(self, options: &[ProductOption]) -> Result<VariantFields, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let fields = self.check(&mut errors, "", options);
        errors.into_result()?;
        Ok(fields)
    }
}

/// The index of the first variant that repeats an earlier one's
/// combination, if any.
pub fn repeated_combination(variants: &[&OptionValues]) -> Option<usize> {
    let mut seen = BTreeSet::new();
    variants.iter().position(|v| !seen.insert(*v))
}

/// Why a product with variants cannot take an options change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionChangeRefusal {
    /// The option is removed while variants name a value of it.
    OptionInUse(String),
    /// A value is removed while a variant names it.
    ValueInUse { option: String, value: String },
    /// An option is added while variants exist: none of them names a value
    /// of it, and a variant must name one of each.
    OptionAdded(String),
}

impl OptionChangeRefusal {
    /// Stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OptionInUse(_) => "option_in_use",
            Self::ValueInUse { .. } => "option_value_in_use",
            Self::OptionAdded(_) => "option_added_with_variants",
        }
    }
}

impl std::fmt::Display for OptionChangeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OptionInUse(name) => {
                write!(
                    f,
                    "variants name a value of option {name:?}; delete them first"
                )
            }
            Self::ValueInUse { option, value } => write!(
                f,
                "a variant is {option} {value:?}; change or delete it first"
            ),
            Self::OptionAdded(name) => write!(
                f,
                "the product has variants, and none names a value of the new option {name:?}"
            ),
        }
    }
}

/// Whether the options of a product whose variants choose `used` can change
/// from `old` to `new`. Adding values, renaming nothing and reordering are
/// always allowed.
pub fn check_option_change(
    old: &[ProductOption],
    new: &[ProductOption],
    used: &[&OptionValues],
) -> Result<(), OptionChangeRefusal> {
    for option in old {
        let Some(kept) = new.iter().find(|n| n.name == option.name) else {
            if used.iter().any(|v| v.contains_key(&option.name)) {
                return Err(OptionChangeRefusal::OptionInUse(option.name.clone()));
            }
            continue;
        };
        for chosen in used {
            if let Some(value) = chosen.get(&option.name) {
                if !kept.values.contains(value) {
                    return Err(OptionChangeRefusal::ValueInUse {
                        option: option.name.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
    }
    if let Some(added) = new.iter().find(|n| !old.iter().any(|o| o.name == n.name)) {
        if used.iter().any(|v| !v.contains_key(&added.name)) {
            return Err(OptionChangeRefusal::OptionAdded(added.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_options_and_activity_reshape_listings() {
        let before = VariantFields {
            sku: "A".into(),
            options: OptionValues::new(),
            price: 100,
            compare_at_price: None,
            stock: 3,
            weight_grams: 0,
            requires_shipping: true,
            is_active: true,
            position: 0,
        };
        let repriced = VariantFields {
            price: 90,
            stock: 0,
            sku: "B".into(),
            weight_grams: 5,
            position: 2,
            ..before.clone()
        };
        assert!(!before.reshapes_listings(&repriced));
        let off = VariantFields {
            is_active: false,
            ..before.clone()
        };
        assert!(before.reshapes_listings(&off));
        let mut options = OptionValues::new();
        options.insert("size".into(), "M".into());
        assert!(before.reshapes_listings(&VariantFields {
            options,
            ..before.clone()
        }));
    }

    fn option(name: &str, values: &[&str]) -> ProductOption {
        ProductOption {
            name: name.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn choice(pairs: &[(&str, &str)]) -> OptionValues {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn shirt() -> Vec<ProductOption> {
        vec![
            option("size", &["S", "M", "L"]),
            option("colour", &["red", "blue"]),
        ]
    }

    fn draft(pairs: &[(&str, &str)]) -> VariantDraft {
        VariantDraft {
            sku: "TS-M-RED".into(),
            options: choice(pairs),
            price: 1500,
            stock: 3,
            ..VariantDraft::default()
        }
    }

    #[test]
    fn a_variant_names_one_listed_value_of_each_option() {
        let ok = draft(&[("size", "M"), ("colour", " red ")])
            .validate(&shirt())
            .expect("valid");
        assert_eq!(ok.options, choice(&[("size", "M"), ("colour", "red")]));
        assert!(ok.is_active);
        assert!(ok.requires_shipping);
        let codes = |d: VariantDraft| -> Vec<&'static str> {
            d.validate(&shirt())
                .expect_err("invalid")
                .errors()
                .iter()
                .map(|e| e.code)
                .collect()
        };
        assert_eq!(codes(draft(&[("size", "M")])), ["missing_option"]);
        assert_eq!(
            codes(draft(&[("size", "XL"), ("colour", "red")])),
            ["unknown_value"]
        );
        assert_eq!(
            codes(draft(&[("size", "M"), ("colour", "red"), ("fit", "slim")])),
            ["unknown_option"]
        );
        // A product without options has one variant that names nothing.
        assert!(draft(&[]).validate(&[]).is_ok());
        assert!(draft(&[("size", "M")]).validate(&[]).is_err());
    }

    #[test]
    fn every_bad_variant_field_is_reported_under_its_prefix() {
        let bad = VariantDraft {
            sku: "no spaces".into(),
            price: -1,
            compare_at_price: Some(MAX_PRICE + 1),
            stock: MAX_STOCK + 1,
            weight_grams: Some(-1),
            position: Some(MAX_POSITION + 1),
            ..VariantDraft::default()
        };
        let mut errors = ValidationErrors::new();
        bad.check(&mut errors, "variants.1.", &[]);
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "variants.1.sku",
                "variants.1.price",
                "variants.1.compare_at_price",
                "variants.1.stock",
                "variants.1.weight_grams",
                "variants.1.position"
            ]
        );
    }

    #[test]
    fn options_are_bounded_and_named_once() {
        let mut e = ValidationErrors::new();
        let four: Vec<_> = (0..4).map(|n| option(&format!("o{n}"), &["a"])).collect();
        check_options(&mut e, "options", &four);
        assert_eq!(e.errors()[0].code, "too_many");

        let mut e = ValidationErrors::new();
        check_options(
            &mut e,
            "options",
            &[option("Size", &["S"]), option(" size", &["M"])],
        );
        assert_eq!(e.errors()[0].field, "options.1.name");

        let mut e = ValidationErrors::new();
        check_options(&mut e, "options", &[option("size", &["S", "S "])]);
        assert_eq!(e.errors()[0].code, "duplicate");

        let mut e = ValidationErrors::new();
        let many: Vec<String> = (0..=MAX_OPTION_VALUES).map(|n| n.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check_options(
            &mut e,
            "options",
            &[option("size", &many), option("fit", &[])],
        );
        let codes: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(codes, ["options.0.values", "options.1.values"]);
    }

    #[test]
    fn a_repeated_combination_is_found_whatever_the_key_order() {
        let a = choice(&[("size", "M"), ("colour", "red")]);
        let b = choice(&[("colour", "blue"), ("size", "M")]);
        let c = choice(&[("colour", "red"), ("size", "M")]);
        assert_eq!(repeated_combination(&[&a, &b]), None);
        assert_eq!(repeated_combination(&[&a, &b, &c]), Some(2));
    }

    #[test]
    fn option_changes_that_would_orphan_a_variant_are_refused() {
        let used = choice(&[("size", "M"), ("colour", "red")]);
        let used = [&used];
        // Adding a value, and reordering, are fine.
        let more = vec![
            option("colour", &["red", "blue", "green"]),
            option("size", &["S", "M", "L"]),
        ];
        assert_eq!(check_option_change(&shirt(), &more, &used), Ok(()));
        // Removing a value nobody uses is fine; one a variant uses is not.
        let fewer = vec![option("size", &["M"]), option("colour", &["red"])];
        assert_eq!(check_option_change(&shirt(), &fewer, &used), Ok(()));
        let gone = vec![option("size", &["S", "L"]), option("colour", &["red"])];
        assert_eq!(
            check_option_change(&shirt(), &gone, &used).map_err(|r| r.code()),
            Err("option_value_in_use")
        );
        let dropped = vec![option("size", &["S", "M", "L"])];
        assert_eq!(
            check_option_change(&shirt(), &dropped, &used).map_err(|r| r.code()),
            Err("option_in_use")
        );
        let added = [shirt(), vec![option("fit", &["slim"])]].concat();
        assert_eq!(
            check_option_change(&shirt(), &added, &used).map_err(|r| r.code()),
            Err("option_added_with_variants")
        );
        // Without variants, anything goes.
        assert_eq!(check_option_change(&shirt(), &added, &[]), Ok(()));
    }

    proptest! {
        /// However a valid variant is patched, the patch validates to the
        /// fields it names and keeps every other field.
        #[test]
        fn a_patch_changes_only_what_it_names(
            price in proptest::option::of(0..=MAX_PRICE),
            stock in proptest::option::of(0..=MAX_STOCK),
            size in proptest::option::of(prop_oneof![Just("S"), Just("M"), Just("L")]),
            active in proptest::option::of(any::<bool>()),
            shipped in proptest::option::of(any::<bool>()),
        ) {
            let current = draft(&[("size", "M"), ("colour", "red")]).validate(&shirt()).expect("valid");
            let patch = VariantPatch {
                price,
                stock,
                options: size.map(|s| choice(&[("size", s), ("colour", "red")])),
                is_active: active,
                requires_shipping: shipped,
                ..VariantPatch::default()
            };
            let next = patch.apply(&current).validate(&shirt()).expect("valid");
            prop_assert_eq!(next.price, price.unwrap_or(current.price));
            prop_assert_eq!(i64::from(next.stock), stock.unwrap_or(i64::from(current.stock)));
            prop_assert_eq!(next.is_active, active.unwrap_or(current.is_active));
            prop_assert_eq!(next.requires_shipping, shipped.unwrap_or(current.requires_shipping));
            prop_assert_eq!(next.weight_grams, current.weight_grams);
            prop_assert_eq!(&next.sku, &current.sku);
            prop_assert_eq!(next.options.get("size").map(String::as_str), Some(size.unwrap_or("M")));
        }

        /// A refused option change always names an option or value some
        /// variant really uses or lacks; an allowed one leaves every
        /// variant a valid choice of the new options.
        #[test]
        fn an_allowed_option_change_keeps_every_variant_valid(
            keep_size in any::<bool>(),
            sizes in proptest::sample::subsequence(vec!["S", "M", "L", "XL"], 1..=4),
            add_fit in any::<bool>(),
            chosen in proptest::sample::select(vec!["S", "M", "L"]),
        ) {
            let old = vec![option("size", &["S", "M", "L"])];
            let mut new = Vec::new();
            if keep_size { new.push(option("size", &sizes)); }
            if add_fit { new.push(option("fit", &["slim"])); }
            let used = choice(&[("size", chosen)]);
            let allowed = check_option_change(&old, &new, &[&used]).is_ok();
            let mut errors = ValidationErrors::new();
            check_choice(&mut errors, "options", &new, &used);
            prop_assert_eq!(allowed, errors.is_empty());
        }
    }
}

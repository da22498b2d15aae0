//! Product listing queries: parsing and checking every filter, and a
//! canonical form whose hash is the cache key (the same filters in another
//! order, spelling or case give the same key).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::product::{normalize_tags, MAX_PRICE};
use super::variant::{
    MAX_OPTIONS, MAX_OPTION_NAME_CHARS, MAX_OPTION_VALUES, MAX_OPTION_VALUE_CHARS,
};
use crate::domain::cache_scope::Dependencies;
use crate::domain::pagination::PageRequest;
use crate::domain::validation::ValidationErrors;

/// Longest search text.
pub const MAX_QUERY_CHARS: usize = 200;

/// A category named by id or by slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CategoryRef {
    Id(Uuid),
    Slug(String),
}

/// Sort orders; each ends with the id as a stable tiebreak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ordering {
    PriceAsc,
    PriceDesc,
    NameAsc,
    NameDesc,
    CreatedAsc,
    CreatedDesc,
}

impl Ordering {
    /// The SQL `ORDER BY` list. Both keys run the same way so one index
    /// serves the order in either direction.
    pub fn sql(self) -> &'static str {
        match self {
            Ordering::PriceAsc => "price ASC, id ASC",
            Ordering::PriceDesc => "price DESC, id DESC",
            Ordering::NameAsc => "name ASC, id ASC",
            Ordering::NameDesc => "name DESC, id DESC",
            Ordering::CreatedAsc => "created_at ASC, id ASC",
            Ordering::CreatedDesc => "created_at DESC, id DESC",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw.trim() {
            "price" => Ordering::PriceAsc,
            "-price" => Ordering::PriceDesc,
            "name" => Ordering::NameAsc,
            "-name" => Ordering::NameDesc,
            "created_at" => Ordering::CreatedAsc,
            "-created_at" => Ordering::CreatedDesc,
            _ => return None,
        })
    }
}

/// Raw query-string values of a product listing.
#[derive(Debug, Clone, Default)]
pub struct RawProductQuery<'a> {
    pub category: Option<&'a str>,
    pub min_price: Option<&'a str>,
    pub max_price: Option<&'a str>,
    pub q: Option<&'a str>,
    pub in_stock: Option<&'a str>,
    pub tags: Option<&'a str>,
    pub ordering: Option<&'a str>,
    pub page: Option<&'a str>,
    pub page_size: Option<&'a str>,
    /// `option.<name>=<value>[,<value>]` parameters: the name after the
    /// dot, and the raw values.
    pub options: Vec<(&'a str, &'a str)>,
    /// `facets=true` asks for the facet counts.
    pub facets: Option<&'a str>,
}

/// A checked product listing query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductQuery {
    pub category: Option<CategoryRef>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Search text, whitespace collapsed and lower-cased.
    pub q: Option<String>,
    pub in_stock: Option<bool>,
    /// Products must carry every one of these tags.
    pub tags: Vec<String>,
    /// By option name, the values of which a product must have one among
    /// its active variants; every named option must hold (each on its own
    /// variant or the same).
    pub options: BTreeMap<String, Vec<String>>,
    /// Whether the page carries the facet counts.
    pub facets: bool,
    pub ordering: Ordering,
    #[serde(skip)]
    pub page: PageRequest,
}

/// Parses the `option.<name>` filters: at most three options, each with
/// 1-100 distinct values; names and values are matched exactly as stored
/// (trimmed).
fn option_filters(
    errors: &mut ValidationErrors,
    raw: &[(&str, &str)],
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, values) in raw {
        let field = format!("option.{name}");
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_OPTION_NAME_CHARS {
            errors.add(
                &field,
                "invalid",
                format!("option names have 1 to {MAX_OPTION_NAME_CHARS} characters"),
            );
            continue;
        }
        let mut values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        if values.is_empty()
            || values.len() > MAX_OPTION_VALUES
            || values
                .iter()
                .any(|v| v.chars().count() > MAX_OPTION_VALUE_CHARS)
        {
            errors.add(
                &field,
                "invalid",
                format!(
                    "give 1 to {MAX_OPTION_VALUES} comma-separated values of at most {MAX_OPTION_VALUE_CHARS} characters"
                ),
            );
            continue;
        }
        // A repeated option narrows to the values of its last mention,
        // as a repeated parameter does everywhere.
        out.insert(name.to_owned(), values);
    }
    if out.len() > MAX_OPTIONS {
        errors.add(
            "option",
            "too_many",
            format!("filter on at most {MAX_OPTIONS} options"),
        );
    }
    out
}

fn price(errors: &mut ValidationErrors, field: &str, raw: Option<&str>) -> Option<i64> {
    let raw = raw?;
    match raw.trim().parse::<i64>() {
        Ok(n) if (0..=MAX_PRICE).contains(&n) => Some(n),
        _ => {
            errors.add(
                field,
                "invalid",
                format!("{field} must be a whole number of minor units, 0 to {MAX_PRICE}"),
            );
            None
        }
    }
}

impl ProductQuery {
    /// What a page of this query showing `products` depends on: those
    /// products, stock signs when it filters on stock or counts facets,
    /// prices when it filters or orders by price or counts facets.
    pub fn dependencies(&self, products: Vec<Uuid>) -> Dependencies {
        Dependencies {
            products,
            stock: self.in_stock.is_some() || self.facets,
            price: self.min_price.is_some()
                || self.max_price.is_some()
                || matches!(self.ordering, Ordering::PriceAsc | Ordering::PriceDesc)
                || self.facets,
        }
    }

    /// Checks every parameter; all problems are reported together.
    pub fn parse(raw: RawProductQuery<'_>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let page = match PageRequest::parse(raw.page, raw.page_size) {
            Ok(page) => Some(page),
            Err(e) => {
                for fe in e.errors() {
                    errors.add(&fe.field, fe.code, fe.message.clone());
                }
                None
            }
        };
        let category = raw
            .category
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                Uuid::parse_str(c)
                    .map_or_else(|_| CategoryRef::Slug(c.to_lowercase()), CategoryRef::Id)
            });
        let min_price = price(&mut errors, "min_price", raw.min_price);
        let max_price = price(&mut errors, "max_price", raw.max_price);
        if let (Some(min), Some(max)) = (min_price, max_price) {
            if min > max {
                errors.add(
                    "max_price",
                    "invalid",
                    "max_price must not be below min_price",
                );
            }
        }
        let q = raw
            .q
            .map(|q| {
                q.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            })
            .filter(|q| !q.is_empty());
        if q.as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            errors.add(
                "q",
                "too_long",
                format!("q must have at most {MAX_QUERY_CHARS} characters"),
            );
        }
        let in_stock = raw
            .in_stock
            .and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    errors.add("in_stock", "invalid", "in_stock must be true or false");
                    None
                }
            });
        let tags: Vec<String> = raw
            .tags
            .map(|t| {
                t.split(',')
                    .map(str::to_owned)
                    .filter(|t| !t.trim().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let tags = normalize_tags(&mut errors, "tags", &tags);
        let options = option_filters(&mut errors, &raw.options);
        let facets = match raw.facets.map(|f| f.trim().to_ascii_lowercase()) {
            None => false,
            Some(f) if f == "true" || f == "1" => true,
            Some(f) if f == "false" || f == "0" => false,
            Some(_) => {
                errors.add("facets", "invalid", "facets must be true or false");
                false
            }
        };
        let ordering = match raw.ordering.map(str::trim).filter(|o| !o.is_empty()) {
            None => Ordering::CreatedDesc,
            Some(o) => Ordering::parse(o).unwrap_or_else(|| {
                errors.add(
                    "ordering",
                    "invalid",
                    "ordering must be one of price, -price, name, -name, created_at, -created_at",
                );
                Ordering::CreatedDesc
            }),
        };
        errors.into_result()?;
        Ok(Self {
            category,
            min_price,
            max_price,
            q,
            in_stock,
            tags,
            options,
            facets,
            ordering,
            page: page.unwrap_or(PageRequest {
                page: 1,
                page_size: 20,
            }),
        })
    }

    /// A stable digest of everything that shapes the result, page included.
    pub fn cache_key(&self) -> String {
        let canonical = serde_json::json!({
            "filters": self,
            "page": self.page.page,
            "page_size": self.page.page_size,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: RawProductQuery<'_>) -> ProductQuery {
        ProductQuery::parse(raw).expect("valid")
    }

    #[test]
    fn a_page_hangs_on_stock_or_prices_only_where_its_query_does() {
        let ids = vec![Uuid::from_u128(1)];
        let plain = parse(RawProductQuery::default()).dependencies(ids.clone());
        assert_eq!((plain.stock, plain.price), (false, false));
        assert_eq!(plain.products, ids);
        let stock = parse(RawProductQuery {
            in_stock: Some("true"),
            ..RawProductQuery::default()
        })
        .dependencies(vec![]);
        assert_eq!((stock.stock, stock.price), (true, false));
        for raw in [
            RawProductQuery {
                min_price: Some("100"),
                ..RawProductQuery::default()
            },
            RawProductQuery {
                ordering: Some("-price"),
                ..RawProductQuery::default()
            },
        ] {
            let d = parse(raw).dependencies(vec![]);
            assert_eq!((d.stock, d.price), (false, true));
        }
        let facets = parse(RawProductQuery {
            facets: Some("true"),
            ..RawProductQuery::default()
        })
        .dependencies(vec![]);
        assert_eq!((facets.stock, facets.price), (true, true));
    }

    #[test]
    fn defaults_are_newest_first_page_one() {
        let q = parse(RawProductQuery::default());
        assert_eq!(q.ordering, Ordering::CreatedDesc);
        assert_eq!(q.page.page, 1);
        assert!(q.tags.is_empty());
    }

    #[test]
    fn equivalent_queries_share_a_cache_key() {
        let a = parse(RawProductQuery {
            q: Some("  Trail   SHOES "),
            tags: Some("waterproof,Running"),
            min_price: Some("100"),
            ..RawProductQuery::default()
        });
        let b = parse(RawProductQuery {
            q: Some("trail shoes"),
            tags: Some("running, waterproof,running"),
            min_price: Some(" 100"),
            ..RawProductQuery::default()
        });
        assert_eq!(a.cache_key(), b.cache_key());
        let c = parse(RawProductQuery {
            q: Some("trail shoes"),
            tags: Some("running,waterproof"),
            min_price: Some("100"),
            page: Some("2"),
            ..RawProductQuery::default()
        });
        assert_ne!(a.cache_key(), c.cache_key());
    }

    #[test]
    fn categories_are_ids_or_slugs() {
        let id = Uuid::new_v4();
        let by_id = parse(RawProductQuery {
            category: Some(&id.to_string()),
            ..RawProductQuery::default()
        });
        assert_eq!(by_id.category, Some(CategoryRef::Id(id)));
        let by_slug = parse(RawProductQuery {
            category: Some("Shoes"),
            ..RawProductQuery::default()
        });
        assert_eq!(by_slug.category, Some(CategoryRef::Slug("shoes".into())));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let e = ProductQuery::parse(RawProductQuery {
            min_price: Some("-1"),
            max_price: Some("cheap"),
            in_stock: Some("yes"),
            ordering: Some("popularity"),
            page: Some("0"),
            page_size: Some("x"),
            q: Some(&"q".repeat(MAX_QUERY_CHARS + 1)),
            ..RawProductQuery::default()
        })
        .expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "page",
                "page_size",
                "min_price",
                "max_price",
                "q",
                "in_stock",
                "ordering"
            ]
        );
    }

    #[test]
    fn option_filters_are_canonical_and_bounded() {
        let a = parse(RawProductQuery {
            options: vec![("size", "M, L"), ("colour", "red")],
            facets: Some("true"),
            ..RawProductQuery::default()
        });
        assert_eq!(a.options["size"], ["L", "M"]);
        assert!(a.facets);
        let b = parse(RawProductQuery {
            options: vec![("colour", "red,red"), ("size", "L,M")],
            facets: Some("1"),
            ..RawProductQuery::default()
        });
        assert_eq!(a.cache_key(), b.cache_key());
        let without = parse(RawProductQuery {
            options: vec![("colour", "red"), ("size", "L,M")],
            ..RawProductQuery::default()
        });
        assert_ne!(a.cache_key(), without.cache_key(), "facets change the body");
        let e = ProductQuery::parse(RawProductQuery {
            options: vec![
                ("size", " , "),
                ("", "x"),
                ("a", "1"),
                ("b", "1"),
                ("c", "1"),
                ("d", "1"),
            ],
            facets: Some("maybe"),
            ..RawProductQuery::default()
        })
        .expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["option.size", "option.", "option", "facets"]);
    }

    #[test]
    fn min_above_max_is_refused() {
        let e = ProductQuery::parse(RawProductQuery {
            min_price: Some("500"),
            max_price: Some("100"),
            ..RawProductQuery::default()
        })
        .expect_err("invalid");
        assert_eq!(e.errors()[0].field, "max_price");
    }
}

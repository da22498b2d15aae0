//! The facet counts of a product listing, as storefronts show them beside
//! the results: counted over the whole filtered result (not the page), each
//! facet ignoring its own filter, so that choosing `size=M` still shows how
//! many products the other sizes would give.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The facets of one listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Facets {
    /// Products per category (the category a product is in, not its
    /// ancestors), most first.
    pub categories: Vec<CategoryCount>,
    /// Products per tag, most first.
    pub tags: Vec<ValueCount>,
    /// Per option name, products with an active variant of each value,
    /// most first.
    pub options: BTreeMap<String, Vec<ValueCount>>,
    /// The price range; both `null` when nothing matches.
    pub price: PriceRange,
    /// Products with and without stock.
    pub in_stock: StockCounts,
}

/// A category and how many products it would give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryCount {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub count: i64,
}

/// A tag or option value and how many products it would give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

/// Lowest and highest product price in the result, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// How many products have stock, and how many have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockCounts {
    #[serde(rename = "true")]
    pub with_stock: i64,
    #[serde(rename = "false")]
    pub without_stock: i64,
}

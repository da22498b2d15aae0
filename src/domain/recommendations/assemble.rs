//! Turning the shop's own data — categories, products and purchased lines,
//! as the catalog and orders services hand them over — into a dataset.
//! The served model and `recommend-eval --from-db` both go through here.

use std::collections::HashMap;

use uuid::Uuid;

use super::data::{Dataset, Order};
use super::features::product_features;

/// Purchases this old (in days) count half towards popularity, so the
/// popular list follows what sells now rather than what sold once.
pub const POPULARITY_HALF_LIFE_DAYS: f64 = 30.0;

/// A product as the recommender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    pub id: Uuid,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub price: i64,
    /// Active and in stock.
    pub available: bool,
}

/// One purchased line.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseInput {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    /// When the order was paid, in milliseconds.
    pub at_millis: f64,
}

/// The category path (root first) of `category`, by slugs.
fn path(parents: &HashMap<Uuid, (Option<Uuid>, String)>, category: Option<Uuid>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = category;
    while let Some(id) = current {
        let Some((parent, slug)) = parents.get(&id) else {
            break;
        };
        out.push(slug.clone());
        current = *parent;
        // The catalog refuses cycles; this only bounds a corrupt tree.
        if out.len() > 32 {
            break;
        }
    }
    out.reverse();
    out
}

/// Builds a dataset: every product (with features and availability) and
/// every purchase, grouped into orders placed at their payment time.
pub fn assemble(
    categories: &[(Uuid, Option<Uuid>, String)],
    products: &[ProductInput],
    purchases: &[PurchaseInput],
) -> Dataset {
    let parents: HashMap<Uuid, (Option<Uuid>, String)> = categories
        .iter()
        .map(|(id, parent, slug)| (*id, (*parent, slug.clone())))
        .collect();
    let mut data = Dataset::new();
    data.popularity_half_life = Some(POPULARITY_HALF_LIFE_DAYS * 86_400_000.0);
    for p in products {
        let item = data.item(&p.id.to_string());
        data.features[item] =
            product_features(&path(&parents, p.category_id), &p.tags, Some(p.price));
        data.available[item] = p.available;
    }
    let mut orders: HashMap<Uuid, usize> = HashMap::new();
    for line in purchases {
        let user = data.user(&line.user_id.to_string());
        let item = data.item(&line.product_id.to_string());
        let index = *orders.entry(line.order_id).or_insert_with(|| {
            data.orders.push(Order {
                user,
                seq: line.at_millis,
                items: Vec::new(),
            });
            data.orders.len() - 1
        });
        if !data.orders[index].items.contains(&item) {
            data.orders[index].items.push(item);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_parents_and_lines_group_by_order() {
        let (root, leaf) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let categories = vec![
            (root, None, "outdoor".to_owned()),
            (leaf, Some(root), "tents".to_owned()),
        ];
        let (p1, p2) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let products = vec![
            ProductInput {
                id: p1,
                category_id: Some(leaf),
                tags: vec![],
                price: 100,
                available: true,
            },
            ProductInput {
                id: p2,
                category_id: None,
                tags: vec![],
                price: 100,
                available: false,
            },
        ];
        let (user, order) = (Uuid::from_u128(20), Uuid::from_u128(30));
        let purchases = vec![
            PurchaseInput {
                user_id: user,
                order_id: order,
                product_id: p1,
                at_millis: 5.0,
            },
            PurchaseInput {
                user_id: user,
                order_id: order,
                product_id: p2,
                at_millis: 5.0,
            },
        ];
        let d = assemble(&categories, &products, &purchases);
        assert_eq!(d.features[0][1], ("cat:outdoor/tents".to_owned(), 2.0));
        assert_eq!(d.available, vec![true, false]);
        assert_eq!(d.orders.len(), 1);
        assert_eq!(d.orders[0].items, vec![0, 1]);
    }
}

//! Demo customers and purchase history with planted structure, so that a
//! recommender can be evaluated against it: each customer prefers one
//! department and one price tier, and some products are bought together
//! with a fixed companion. Deterministic for a seed; no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use uuid::Uuid;

use crate::domain::catalog::demo::DemoProduct;

/// Leaves whose products are bought with a companion from another leaf.
pub const COMPANION_LEAVES: &[(&str, &str)] = &[
    ("running-shoes", "t-shirts"),
    ("hiking-boots", "backpacks"),
    ("tents", "sleeping-bags"),
    ("kitchen", "cookbooks"),
    ("cameras", "accessories"),
    ("jackets", "trousers"),
];

/// Share of a customer's purchases from their preferred department and tier.
const PREFERENCE: f64 = 0.8;
/// Chance that buying a product with a companion adds the companion.
const COMPANION_RATE: f64 = 0.6;

/// A demo customer and the taste planted in their history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCustomer {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Slug of the preferred department.
    pub department: String,
    /// Preferred tier tag: budget, standard or premium.
    pub tier: String,
}

/// One line of a demo order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLine {
    pub product: usize,
    pub quantity: i32,
}

/// A delivered demo order; `lines` index into the product list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrder {
    pub id: Uuid,
    pub customer: usize,
    pub lines: Vec<DemoLine>,
    pub placed_at: DateTime<Utc>,
}

/// The department slug of each leaf slug.
fn department_of_leaf() -> HashMap<String, String> {
    crate::domain::catalog::demo::demo_categories()
        .into_iter()
        .filter_map(|c| c.parent_slug.map(|p| (c.slug, p)))
        .collect()
}

/// The companion product of each product that has one: the product at the
/// same rank in the companion leaf.
pub fn companions(products: &[DemoProduct]) -> HashMap<usize, usize> {
    let mut by_leaf: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in products.iter().enumerate() {
        if p.fields.is_active {
            by_leaf.entry(p.category_slug.as_str()).or_default().push(i);
        }
    }
    let mut out = HashMap::new();
    for (leaf, partner) in COMPANION_LEAVES {
        let (Some(from), Some(to)) = (by_leaf.get(leaf), by_leaf.get(partner)) else {
            continue;
        };
        for (rank, product) in from.iter().enumerate() {
            out.insert(*product, to[rank % to.len()]);
        }
    }
    out
}

/// `customers` customers with `orders_each` delivered orders each, placed
/// over the 180 days before a fixed date.
pub fn demo_history(
    products: &[DemoProduct],
    customers: usize,
    orders_each: usize,
    seed: u64,
) -> (Vec<DemoCustomer>, Vec<DemoOrder>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0005_EED0_0DE5);
    let departments: Vec<String> = crate::domain::catalog::demo::demo_categories()
        .into_iter()
        .filter(|c| c.parent_slug.is_none())
        .map(|c| c.slug)
        .collect();
    let leaf_department = department_of_leaf();
    let active: Vec<usize> = (0..products.len())
        .filter(|&i| products[i].fields.is_active)
        .collect();
    let mut taste: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for &i in &active {
        let p = &products[i];
        let Some(department) = leaf_department.get(&p.category_slug) else {
            continue;
        };
        for tier in ["budget", "standard", "premium"] {
            if p.fields.tags.iter().any(|t| t == tier) {
                taste
                    .entry((department.clone(), tier.to_owned()))
                    .or_default()
                    .push(i);
            }
        }
    }
    let companions = companions(products);
    let epoch = Utc
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let mut all_customers = Vec::with_capacity(customers);
    let mut orders = Vec::with_capacity(customers * orders_each);
    if active.is_empty() {
        return (all_customers, orders);
    }
    for c in 0..customers {
        let department = departments.choose(&mut rng).cloned().unwrap_or_default();
        let tier = ["budget", "standard", "premium"]
            .choose(&mut rng)
            .copied()
            .unwrap_or("standard")
            .to_owned();
        let favourites = taste
            .get(&(department.clone(), tier.clone()))
            .filter(|f| !f.is_empty());
        for o in 0..orders_each {
            let mut lines: Vec<DemoLine> = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                let product = match favourites {
                    Some(f) if rng.gen_bool(PREFERENCE) => f[rng.gen_range(0..f.len())],
                    _ => active[rng.gen_range(0..active.len())],
                };
                if lines.iter().any(|l| l.product == product) {
                    continue;
                }
                lines.push(DemoLine {
                    product,
                    quantity: rng.gen_range(1..=2),
                });
                if let Some(&companion) = companions.get(&product) {
                    if rng.gen_bool(COMPANION_RATE) && !lines.iter().any(|l| l.product == companion)
                    {
                        lines.push(DemoLine {
                            product: companion,
                            quantity: 1,
                        });
                    }
                }
            }
            orders.push(DemoOrder {
                id: Uuid::from_u64_pair(seed ^ 0x0DE5, (c * orders_each + o) as u64),
                customer: c,
                lines,
                placed_at: epoch - Duration::minutes(rng.gen_range(0..180 * 24 * 60)),
            });
        }
        all_customers.push(DemoCustomer {
            id: Uuid::from_u64_pair(seed ^ 0xC057, c as u64),
            email: format!("customer{c}@demo.emporium.test"),
            name: format!("Demo Customer {c}"),
            department,
            tier,
        });
    }
    (all_customers, orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::demo::demo_products;

    #[test]
    fn history_is_deterministic() {
        let products = demo_products(500, 4);
        assert_eq!(
            demo_history(&products, 20, 3, 4),
            demo_history(&products, 20, 3, 4)
        );
    }

    #[test]
    fn customers_mostly_buy_their_department_and_tier() {
        let products = demo_products(3000, 5);
        let leaf_department = department_of_leaf();
        let (customers, orders) = demo_history(&products, 100, 6, 5);
        let (mut matching, mut total) = (0, 0);
        for order in &orders {
            let customer = &customers[order.customer];
            for line in &order.lines {
                let p = &products[line.product];
                total += 1;
                let same_department =
                    leaf_department.get(&p.category_slug) == Some(&customer.department);
                if same_department && p.fields.tags.contains(&customer.tier) {
                    matching += 1;
                }
            }
        }
        let share = f64::from(matching) / f64::from(total);
        assert!(share > 0.5, "planted preference visible: {share}");
    }

    #[test]
    fn companions_are_often_bought_together() {
        let products = demo_products(3000, 6);
        let companions = companions(&products);
        let (_, orders) = demo_history(&products, 200, 5, 6);
        let together = orders
            .iter()
            .filter(|o| {
                o.lines.iter().any(|l| {
                    companions
                        .get(&l.product)
                        .is_some_and(|c| o.lines.iter().any(|m| m.product == *c))
                })
            })
            .count();
        assert!(
            together > orders.len() / 20,
            "{together} of {}",
            orders.len()
        );
    }
}

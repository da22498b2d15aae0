//! The demo catalog: a category tree and products with structure a
//! recommender can learn from (departments, price bands, tiers, tags that
//! cluster by category). Deterministic for a seed; no I/O.

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use uuid::Uuid;

use super::product::ProductFields;
use super::text::slugify;
use super::variant::VariantFields;

/// One leaf category of the demo tree with what its products look like.
struct Leaf {
    name: &'static str,
    nouns: &'static [&'static str],
    tags: &'static [&'static str],
    /// Price band of a standard-tier product, in cents.
    band: (i64, i64),
}

struct Department {
    name: &'static str,
    code: &'static str,
    leaves: &'static [Leaf],
}

const DEPARTMENTS: &[Department] = &[
    Department {
        name: "Footwear",
        code: "FTW",
        leaves: &[
            Leaf {
                name: "Running Shoes",
                nouns: &["Runner", "Racer", "Trainer", "Pacer"],
                tags: &["running", "road", "trail", "cushioned", "lightweight"],
                band: (6_000, 16_000),
            },
            Leaf {
                name: "Hiking Boots",
                nouns: &["Boot", "Trekker", "Summit Boot", "Scrambler"],
                tags: &["hiking", "waterproof", "leather", "ankle-support", "trail"],
                band: (9_000, 24_000),
            },
            Leaf {
                name: "Sandals",
                nouns: &["Sandal", "Slide", "Flip-Flop"],
                tags: &["summer", "beach", "lightweight", "casual"],
                band: (1_500, 6_000),
            },
        ],
    },
    Department {
        name: "Apparel",
        code: "APP",
        leaves: &[
            Leaf {
                name: "Jackets",
                nouns: &["Shell Jacket", "Down Jacket", "Fleece", "Parka"],
                tags: &["waterproof", "insulated", "windproof", "packable", "winter"],
                band: (7_000, 30_000),
            },
            Leaf {
                name: "T-Shirts",
                nouns: &["Tee", "Tech Tee", "Long Sleeve", "Tank"],
                tags: &["cotton", "merino", "quick-dry", "casual", "running"],
                band: (1_500, 5_000),
            },
            Leaf {
                name: "Trousers",
                nouns: &["Trousers", "Hiking Pants", "Joggers", "Shorts"],
                tags: &["stretch", "quick-dry", "hiking", "casual"],
                band: (3_000, 11_000),
            },
        ],
    },
    Department {
        name: "Outdoor",
        code: "OUT",
        leaves: &[
            Leaf {
                name: "Tents",
                nouns: &["Tent", "Shelter", "Bivy"],
                tags: &[
                    "camping",
                    "ultralight",
                    "2-person",
                    "4-season",
                    "waterproof",
                ],
                band: (12_000, 60_000),
            },
            Leaf {
                name: "Backpacks",
                nouns: &["Daypack", "Backpack", "Hydration Pack", "Travel Pack"],
                tags: &["hiking", "travel", "waterproof", "ultralight", "camping"],
                band: (4_000, 25_000),
            },
            Leaf {
                name: "Sleeping Bags",
                nouns: &["Sleeping Bag", "Quilt", "Liner"],
                tags: &["camping", "down", "synthetic", "winter", "ultralight"],
                band: (5_000, 40_000),
            },
        ],
    },
    Department {
        name: "Home",
        code: "HOM",
        leaves: &[
            Leaf {
                name: "Kitchen",
                nouns: &["Pan", "Knife", "Kettle", "Mug", "Cutting Board"],
                tags: &["cooking", "stainless-steel", "cast-iron", "dishwasher-safe"],
                band: (1_500, 15_000),
            },
            Leaf {
                name: "Lighting",
                nouns: &["Lamp", "Pendant", "Lantern", "Desk Light"],
                tags: &["led", "dimmable", "brass", "minimalist"],
                band: (2_500, 20_000),
            },
            Leaf {
                name: "Decor",
                nouns: &["Vase", "Throw", "Cushion", "Frame", "Rug"],
                tags: &["linen", "ceramic", "wool", "minimalist", "handmade"],
                band: (1_000, 12_000),
            },
        ],
    },
    Department {
        name: "Electronics",
        code: "ELE",
        leaves: &[
            Leaf {
                name: "Audio",
                nouns: &["Headphones", "Earbuds", "Speaker", "Soundbar"],
                tags: &["wireless", "noise-cancelling", "bluetooth", "portable"],
                band: (3_000, 40_000),
            },
            Leaf {
                name: "Cameras",
                nouns: &["Camera", "Action Cam", "Lens", "Tripod"],
                tags: &["4k", "waterproof", "mirrorless", "travel"],
                band: (10_000, 150_000),
            },
            Leaf {
                name: "Accessories",
                nouns: &["Charger", "Cable", "Power Bank", "Case"],
                tags: &["usb-c", "portable", "fast-charge", "travel"],
                band: (800, 6_000),
            },
        ],
    },
    Department {
        name: "Books",
        code: "BOK",
        leaves: &[
            Leaf {
                name: "Fiction",
                nouns: &["Novel", "Short Stories", "Thriller", "Saga"],
                tags: &["paperback", "hardcover", "bestseller", "classic"],
                band: (800, 3_000),
            },
            Leaf {
                name: "Travel Guides",
                nouns: &["Guide", "Atlas", "Trail Guide", "Phrasebook"],
                tags: &["travel", "hiking", "maps", "paperback"],
                band: (1_200, 4_000),
            },
            Leaf {
                name: "Cookbooks",
                nouns: &["Cookbook", "Baking Book", "Kitchen Handbook"],
                tags: &["cooking", "hardcover", "vegetarian", "baking"],
                band: (1_500, 5_000),
            },
        ],
    },
];

const ADJECTIVES: &[&str] = &[
    "Alpine",
    "Urban",
    "Coastal",
    "Nordic",
    "Classic",
    "Swift",
    "Rugged",
    "Everyday",
    "Summit",
    "Horizon",
    "Evergreen",
    "Trailhead",
    "Metro",
    "Canyon",
    "Harbor",
    "Aurora",
];
const BRANDS: &[&str] = &[
    "Northwind",
    "Kestrel",
    "Ridgeway",
    "Lumen",
    "Fjord",
    "Cascade",
    "Juniper",
    "Basalt",
];
const COLOURS: &[&str] = &[
    "black", "navy", "olive", "sand", "red", "grey", "white", "teal",
];

/// A demo category: its slug, name, and its parent's slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCategory {
    pub slug: String,
    pub name: String,
    pub parent_slug: Option<String>,
}

/// A demo product with the slug of its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoProduct {
    /// Derived from the seed and position, so re-seeding finds the same ids.
    pub id: Uuid,
    pub fields: ProductFields,
    /// Its variants with their ids; a product without options has one,
    /// whose id is the product's.
    pub variants: Vec<(Uuid, VariantFields)>,
    pub category_slug: String,
}

/// The category tree: departments, each with three leaves.
pub fn demo_categories() -> Vec<DemoCategory> {
    let mut out = Vec::new();
    for department in DEPARTMENTS {
        let parent = slugify(department.name);
        out.push(DemoCategory {
            slug: parent.clone(),
            name: department.name.into(),
            parent_slug: None,
        });
        for leaf in department.leaves {
            out.push(DemoCategory {
                slug: slugify(leaf.name),
                name: leaf.name.into(),
                parent_slug: Some(parent.clone()),
            });
        }
    }
    out
}

/// `count` products, the same for the same `seed`. Products are spread over
/// the leaves; each has a tier (budget, standard, premium) that scales its
/// price band and is also a tag.
pub fn demo_products(count: usize, seed: u64) -> Vec<DemoProduct> {
    let mut rng = StdRng::seed_from_u64(seed);
    let leaves: Vec<(&Department, &Leaf)> = DEPARTMENTS
        .iter()
        .flat_map(|d| d.leaves.iter().map(move |l| (d, l)))
        .collect();
    (0..count)
        .map(|n| {
            let (department, leaf) = leaves[rng.gen_range(0..leaves.len())];
            let (tier, factor) = match rng.gen_range(0..10) {
                0..=2 => ("budget", 0.6),
                3..=7 => ("standard", 1.0),
                _ => ("premium", 1.8),
            };
            let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("Classic");
            let brand = BRANDS.choose(&mut rng).copied().unwrap_or("Northwind");
            let noun = leaf.nouns.choose(&mut rng).copied().unwrap_or("Item");
            let colour = COLOURS.choose(&mut rng).copied().unwrap_or("black");
            let name = format!("{brand} {adjective} {noun}");
            let base = rng.gen_range(leaf.band.0..=leaf.band.1) as f64 * factor;
            // Prices end in 99 cents, as shops' do.
            let price = ((base / 100.0).round() as i64).max(1) * 100 - 1;
            let tag_count = 2 + rng.gen_range(0..2);
            let mut tags: Vec<String> = leaf
                .tags
                .choose_multiple(&mut rng, tag_count)
                .map(|t| (*t).to_owned())
                .collect();
            tags.push(tier.into());
            tags.push(colour.into());
            tags.sort();
            tags.dedup();
            // Drawn as i64, as before variants, so a seed gives the same shop.
            let stock: i64 = if rng.gen_bool(0.1) {
                0
            } else {
                rng.gen_range(1..=200)
            };
            let description = format!(
                "The {name} in {colour}: a {tier} {} from {brand}. Tags: {}.",
                noun.to_lowercase(),
                tags.join(", ")
            );
            DemoProduct {
                id: Uuid::from_u64_pair(seed, n as u64),
                fields: ProductFields {
                    slug: format!("{}-{n}", slugify(&name)),
                    name,
                    description,
                    category_id: None,
                    currency: "EUR".into(),
                    tags,
                    is_active: !rng.gen_bool(0.03),
                    options: Vec::new(),
                },
                variants: vec![(
                    Uuid::from_u64_pair(seed, n as u64),
                    VariantFields {
                        sku: format!("{}-{:07}", department.code, n),
                        options: Default::default(),
                        price,
                        compare_at_price: None,
                        stock: i32::try_from(stock).unwrap_or(0),
                        weight_grams: 0,
                        is_active: true,
                        position: 0,
                    },
                )],
                category_slug: slugify(leaf.name),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_catalog() {
        assert_eq!(demo_products(200, 7), demo_products(200, 7));
        assert_ne!(demo_products(50, 7), demo_products(50, 8));
    }

    #[test]
    fn demo_products_are_valid_and_unique() {
        let products = demo_products(2000, 1);
        let mut slugs: Vec<_> = products.iter().map(|p| p.fields.slug.clone()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), 2000);
        let categories: Vec<String> = demo_categories().into_iter().map(|c| c.slug).collect();
        for p in &products {
            let (_, default) = &p.variants[0];
            let draft = crate::domain::catalog::product::ProductDraft {
                name: p.fields.name.clone(),
                slug: Some(p.fields.slug.clone()),
                sku: Some(default.sku.clone()),
                description: Some(p.fields.description.clone()),
                category_id: None,
                price: Some(default.price),
                currency: p.fields.currency.clone(),
                stock: Some(i64::from(default.stock)),
                tags: Some(p.fields.tags.clone()),
                is_active: Some(p.fields.is_active),
                ..Default::default()
            };
            let valid = draft.validate().expect("valid");
            assert_eq!(valid.fields.tags, p.fields.tags);
            assert_eq!(valid.variants, std::slice::from_ref(default));
            assert!(categories.contains(&p.category_slug));
        }
    }

    #[test]
    fn tiers_shape_prices_within_a_category() {
        let products = demo_products(3000, 3);
        let mean = |tier: &str| {
            let prices: Vec<i64> = products
                .iter()
                .filter(|p| p.category_slug == "tents" && p.fields.tags.iter().any(|t| t == tier))
                .map(|p| p.variants[0].1.price)
                .collect();
            prices.iter().sum::<i64>() / prices.len().max(1) as i64
        };
        assert!(mean("budget") < mean("standard") && mean("standard") < mean("premium"));
    }
}

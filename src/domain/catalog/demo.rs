//! The demo catalog: a category tree and products with structure a
//! recommender can learn from (departments, price bands, tiers, tags that
//! cluster by category). Deterministic for a seed; no I/O.

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use uuid::Uuid;

use super::product::{ProductFields, DEFAULT_TAX_CLASS};
use super::text::slugify;
use super::variant::{OptionValues, ProductOption, VariantFields};

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
            let id = Uuid::from_u64_pair(seed, n as u64);
            let sku = format!("{}-{:07}", department.code, n);
            let shape = Shape::of(department.code, leaf.name);
            let (options, variants) = demo_variants(
                shape,
                (seed, n as u64),
                id,
                &sku,
                colour,
                price,
                i32::try_from(stock).unwrap_or(0),
            );
            DemoProduct {
                id,
                fields: ProductFields {
                    slug: format!("{}-{n}", slugify(&name)),
                    name,
                    description,
                    category_id: None,
                    currency: "EUR".into(),
                    tags,
                    is_active: !rng.gen_bool(0.03),
                    options,
                    // Every demo product is taxed at the standard rate.
                    tax_class: DEFAULT_TAX_CLASS.into(),
                },
                variants,
                category_slug: slugify(leaf.name),
            }
        })
        .collect()
}

/// A small picture of a demo product: a 48×48 PNG in colours drawn from
/// its id, the same for the same product every time.
pub fn demo_image(product: Uuid) -> Vec<u8> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(product.as_bytes());
    let base = [digest[0], digest[1], digest[2]];
    let picture = image::RgbImage::from_fn(48, 48, |x, y| {
        // A diagonal stripe over the base colour.
        if (x + y) % 16 < 6 {
            image::Rgb([255 - base[0], 255 - base[1], 255 - base[2]])
        } else {
            image::Rgb(base)
        }
    });
    let mut out = Vec::new();
    // Encoding a small in-memory image into memory cannot fail.
    let _ = picture.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png);
    out
}

/// How a demo product varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Apparel: sizes and colours.
    SizedAndColoured,
    /// Footwear: EU sizes.
    Sized,
    /// Cameras: storage, priced up.
    Storage,
    /// Everything else: one default variant.
    Single,
}

impl Shape {
    fn of(department: &str, leaf: &str) -> Self {
        match (department, leaf) {
            ("APP", _) => Shape::SizedAndColoured,
            ("FTW", _) => Shape::Sized,
            ("ELE", "Cameras") => Shape::Storage,
            _ => Shape::Single,
        }
    }
}

const APPAREL_SIZES: &[&str] = &["XS", "S", "M", "L", "XL"];
const SHOE_SIZES: &[&str] = &["38", "39", "40", "41", "42", "43", "44", "45", "46"];
/// Storage sizes and what each adds to the price, in percent.
const STORAGE: &[(&str, i64)] = &[("64 GB", 0), ("128 GB", 15), ("256 GB", 35)];

/// A demo product's options and variants. The variants draw from their
/// own generator (seeded by the product), so the products' fields stay what
/// they were before variants for the same seed; together the variants
/// hold the product's `stock`, and the cheapest is at its `price`.
fn demo_variants(
    shape: Shape,
    (seed, n): (u64, u64),
    id: Uuid,
    sku: &str,
    colour: &str,
    price: i64,
    stock: i32,
) -> (Vec<ProductOption>, Vec<(Uuid, VariantFields)>) {
    let mut rng =
        StdRng::seed_from_u64(seed.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let variant = |options: OptionValues, suffix: &str, price: i64, stock: i32, position: usize| {
        VariantFields {
            sku: if suffix.is_empty() {
                sku.to_owned()
            } else {
                format!("{sku}-{suffix}")
            },
            options,
            price,
            compare_at_price: None,
            stock,
            weight_grams: 0,
            // Every demo product is a physical good.
            requires_shipping: true,
            is_active: true,
            position: i32::try_from(position).unwrap_or(0),
        }
    };
    let choose = |rng: &mut StdRng, from: &[&'static str], least: usize| -> Vec<&'static str> {
        let mut picked: Vec<&str> = from.iter().copied().filter(|_| rng.gen_bool(0.7)).collect();
        let mut i = 0;
        while picked.len() < least.min(from.len()) {
            if !picked.contains(&from[i]) {
                picked.push(from[i]);
            }
            i += 1;
        }
        // In the order the option lists them.
        picked.sort_by_key(|v| from.iter().position(|f| f == v));
        picked
    };
    let combos: Vec<(OptionValues, String, i64)> = match shape {
        Shape::Single => {
            return (
                Vec::new(),
                vec![(id, variant(OptionValues::new(), "", price, stock, 0))],
            )
        }
        Shape::SizedAndColoured => {
            let sizes = choose(&mut rng, APPAREL_SIZES, 3);
            let mut colours = vec![colour];
            for other in COLOURS.choose_multiple(&mut rng, 2) {
                if rng.gen_bool(0.5) && !colours.contains(other) {
                    colours.push(other);
                }
            }
            let options = vec![
                ProductOption {
                    name: "size".into(),
                    values: sizes.iter().map(|s| (*s).to_owned()).collect(),
                },
                ProductOption {
                    name: "colour".into(),
                    values: colours.iter().map(|c| (*c).to_owned()).collect(),
                },
            ];
            let combos = colours
                .iter()
                .flat_map(|c| sizes.iter().map(move |s| (*s, *c)))
                .map(|(s, c)| {
                    let chosen = OptionValues::from([
                        ("size".to_owned(), s.to_owned()),
                        ("colour".to_owned(), c.to_owned()),
                    ]);
                    (chosen, format!("{s}-{}", c.to_uppercase()), price)
                })
                .collect();
            return finish(options, combos, (seed, n), stock, &variant);
        }
        Shape::Sized => {
            let sizes = choose(&mut rng, SHOE_SIZES, 4);
            let options = vec![ProductOption {
                name: "size".into(),
                values: sizes.iter().map(|s| (*s).to_owned()).collect(),
            }];
            let combos = sizes
                .iter()
                .map(|s| {
                    (
                        OptionValues::from([("size".to_owned(), (*s).to_owned())]),
                        (*s).to_owned(),
                        price,
                    )
                })
                .collect();
            return finish(options, combos, (seed, n), stock, &variant);
        }
        Shape::Storage => STORAGE
            .iter()
            .map(|(storage, extra)| {
                let priced = price + price * extra / 100;
                (
                    OptionValues::from([("storage".to_owned(), (*storage).to_owned())]),
                    storage.replace(' ', ""),
                    priced,
                )
            })
            .collect(),
    };
    let options = vec![ProductOption {
        name: "storage".into(),
        values: STORAGE.iter().map(|(s, _)| (*s).to_owned()).collect(),
    }];
    finish(options, combos, (seed, n), stock, &variant)
}

/// The variants of `combos` with ids from the product, sharing `stock`.
fn finish(
    options: Vec<ProductOption>,
    combos: Vec<(OptionValues, String, i64)>,
    (seed, n): (u64, u64),
    stock: i32,
    variant: &dyn Fn(OptionValues, &str, i64, i32, usize) -> VariantFields,
) -> (Vec<ProductOption>, Vec<(Uuid, VariantFields)>) {
    let k = i32::try_from(combos.len()).unwrap_or(1).max(1);
    let variants = combos
        .into_iter()
        .enumerate()
        .map(|(i, (chosen, suffix, price))| {
            // The first variant takes the remainder, so the stock adds up.
            let share = stock / k + if i == 0 { stock % k } else { 0 };
            let vid = Uuid::from_u64_pair(seed ^ 0x7661_7269_616e_7473, (n << 16) | i as u64);
            (vid, variant(chosen, &suffix, price, share, i))
        })
        .collect();
    (options, variants)
}

/// The demo shop's stock locations: a European warehouse, preferred, and
/// an American one. Seeded stock goes to the preferred one; the migration's
/// main warehouse stays, ranked last.
pub fn demo_locations() -> Vec<crate::domain::catalog::location::LocationFields> {
    use crate::domain::catalog::location::LocationFields;
    vec![
        LocationFields {
            name: "EU warehouse".into(),
            country: "DE".into(),
            priority: 10,
            is_active: true,
        },
        LocationFields {
            name: "US warehouse".into(),
            country: "US".into(),
            priority: 5,
            is_active: true,
        },
    ]
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
            if !p.fields.options.is_empty() {
                let total: i32 = p.variants.iter().map(|(_, v)| v.stock).sum();
                let cheapest = p.variants.iter().map(|(_, v)| v.price).min();
                let combos: Vec<_> = p.variants.iter().map(|(_, v)| &v.options).collect();
                assert_eq!(
                    crate::domain::catalog::variant::repeated_combination(&combos),
                    None
                );
                for (_, v) in &p.variants {
                    let draft = crate::domain::catalog::variant::VariantDraft {
                        sku: v.sku.clone(),
                        options: v.options.clone(),
                        price: v.price,
                        stock: i64::from(v.stock),
                        ..Default::default()
                    };
                    draft.validate(&p.fields.options).expect("a valid variant");
                }
                assert!(cheapest.is_some() && total >= 0);
                continue;
            }
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
    fn apparel_shoes_and_cameras_come_in_variants_and_the_rest_in_one() {
        let products = demo_products(600, 5);
        let with_options = |dept: &str| {
            products
                .iter()
                .filter(|p| p.variants[0].1.sku.starts_with(dept))
                .all(|p| !p.fields.options.is_empty())
        };
        assert!(with_options("APP") && with_options("FTW"));
        assert!(products
            .iter()
            .filter(|p| p.variants[0].1.sku.starts_with("BOK"))
            .all(|p| p.variants.len() == 1 && p.variants[0].0 == p.id));
        let mut ids: Vec<_> = products
            .iter()
            .flat_map(|p| p.variants.iter().map(|v| v.0))
            .collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "variant ids are unique");
        let mut skus: Vec<_> = products
            .iter()
            .flat_map(|p| p.variants.iter().map(|v| v.1.sku.clone()))
            .collect();
        skus.sort();
        skus.dedup();
        assert_eq!(skus.len(), all, "SKUs are unique");
    }

    #[test]
    fn demo_images_are_real_pngs_of_their_product() {
        let id = Uuid::from_u64_pair(1, 2);
        let png = demo_image(id);
        assert_eq!(png, demo_image(id));
        assert_eq!(
            crate::domain::catalog::image::inspect(&png).map(|(_, w, h)| (w, h)),
            Ok((48, 48))
        );
        assert_ne!(png, demo_image(Uuid::from_u64_pair(3, 4)));
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

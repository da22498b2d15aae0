//! Listings answered in memory: a compact copy of what listing filters,
//! orders and facets read of each product (category, tags, price, stock,
//! option values, its rank in each order), with tags and option values
//! interned as small integers. A listing's page of ids, its count and its
//! facets are then one pass over a few bytes per product, instead of
//! statements that scan and materialise the catalog.
//!
//! The results follow the SQL of `store::catalog` (`list_products` and
//! `facets`: each facet counted under every filter but its own; an
//! option's facet ignores the filter on that option only), so either may
//! answer.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::facets::{CategoryCount, Facets, PriceRange, StockCounts, ValueCount};
use super::listing::Ordering;

/// A product's place in each listing order, as the database sorts them
/// (`price, id`, `name, id` and `created_at, id`, ascending; descending
/// orders are the reverse): ranks rather than values, so names sort by
/// the database's collation, not Rust's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ranks {
    pub price: u32,
    pub name: u32,
    pub created: u32,
}

/// What listings read of one product, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedProduct {
    pub id: Uuid,
    pub ranks: Ranks,
    pub is_active: bool,
    pub category_id: Option<Uuid>,
    pub price: i64,
    pub stock: i64,
    pub tags: Vec<String>,
    /// `(option name, value)` of every active variant, without repeats.
    pub options: Vec<(String, String)>,
}

/// A category as the category facet names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryName {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

/// The filters a listing's facets count under (search is not among them:
/// a listing with `q` is counted by the database).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListingFilter<'a> {
    pub only_active: bool,
    /// A category and its descendants; `None` means any category.
    pub category_ids: Option<&'a [Uuid]>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    /// Every one of these tags.
    pub tags: &'a [String],
    /// By option name, one of these values on an active variant.
    pub options: &'a [(String, Vec<String>)],
}

#[derive(Debug)]
struct Entry {
    id: Uuid,
    ranks: Ranks,
    is_active: bool,
    category: Option<u32>,
    price: i64,
    stock: i64,
    tags: Box<[u32]>,
    options: Box<[u32]>,
}

/// The facet index of a whole catalog.
#[derive(Debug, Default)]
pub struct ListingIndex {
    entries: Vec<Entry>,
    /// By interned id: the category's name, `None` for an id products name
    /// that is not a known category (filtered on, never counted).
    categories: Vec<Option<CategoryName>>,
    category_ids: HashMap<Uuid, u32>,
    tags: Vec<String>,
    tag_ids: HashMap<String, u32>,
    /// `(option name id, value)` per interned option value.
    options: Vec<(u32, String)>,
    option_ids: HashMap<(String, String), u32>,
    option_names: Vec<String>,
    option_name_ids: HashMap<String, u32>,
}

fn intern<K: std::hash::Hash + Eq>(ids: &mut HashMap<K, u32>, key: K, next: usize) -> (u32, bool) {
    let next = u32::try_from(next).unwrap_or(u32::MAX);
    match ids.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
        std::collections::hash_map::Entry::Vacant(e) => (*e.insert(next), true),
    }
}

/// One option filter, as indexes: the option's name id (`None` when no
/// product has the option) and the value ids it accepts.
struct OptionFilter {
    name: Option<u32>,
    values: Vec<u32>,
}

/// A listing's filters over interned ids.
struct Matcher {
    only_active: bool,
    /// By interned category id, whether the filter takes it.
    categories: Option<Vec<bool>>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    in_stock: Option<bool>,
    /// `None` when a tag no product has is asked for.
    tags: Option<Vec<u32>>,
    options: Vec<OptionFilter>,
    /// Bit i set for every option filter i.
    all_options: u32,
}

/// Which of a listing's filters one product passes.
struct Flags {
    fc: bool,
    fp: bool,
    fs: bool,
    ft: bool,
    fo: bool,
    /// Bit i: option filter i holds.
    held: u32,
}

impl Flags {
    fn all(&self) -> bool {
        self.fc && self.fp && self.fs && self.ft && self.fo
    }
}

impl Matcher {
    /// The filters `e` passes; `None` when it is not listed at all.
    fn flags(&self, e: &Entry) -> Option<Flags> {
        if self.only_active && !e.is_active {
            return None;
        }
        let mut held = 0_u32;
        for (i, o) in self.options.iter().enumerate() {
            if o.values.iter().any(|v| e.options.binary_search(v).is_ok()) {
                held |= 1 << i;
            }
        }
        Some(Flags {
            fc: self
                .categories
                .as_ref()
                .is_none_or(|wanted| e.category.is_some_and(|c| wanted[c as usize])),
            fp: self.min_price.is_none_or(|m| e.price >= m)
                && self.max_price.is_none_or(|m| e.price <= m),
            fs: self.in_stock.is_none_or(|s| (e.stock > 0) == s),
            ft: self
                .tags
                .as_ref()
                .is_some_and(|wanted| wanted.iter().all(|t| e.tags.contains(t))),
            fo: held == self.all_options,
            held,
        })
    }
}

impl ListingIndex {
    /// Indexes `products`; categories a product names but `categories` does
    /// not hold are left out of the category facet, as a join would.
    pub fn build(
        categories: Vec<CategoryName>,
        products: impl IntoIterator<Item = IndexedProduct>,
    ) -> Self {
        let mut index = ListingIndex::default();
        for c in categories {
            let i = index.category_id(c.id);
            index.categories[i as usize] = Some(c);
        }
        for p in products {
            let tags = p.tags.into_iter().map(|t| index.tag_id(t)).collect();
            let mut options: Vec<u32> = p
                .options
                .into_iter()
                .map(|(name, value)| index.option_id(name, value))
                .collect();
            options.sort_unstable();
            options.dedup();
            let category = p.category_id.map(|c| index.category_id(c));
            index.entries.push(Entry {
                id: p.id,
                ranks: p.ranks,
                is_active: p.is_active,
                category,
                price: p.price,
                stock: p.stock,
                tags,
                options: options.into(),
            });
        }
        index
    }

    fn category_id(&mut self, id: Uuid) -> u32 {
        let (i, new) = intern(&mut self.category_ids, id, self.categories.len());
        if new {
            self.categories.push(None);
        }
        i
    }

    fn tag_id(&mut self, tag: String) -> u32 {
        let (id, new) = intern(&mut self.tag_ids, tag.clone(), self.tags.len());
        if new {
            self.tags.push(tag);
        }
        id
    }

    fn option_id(&mut self, name: String, value: String) -> u32 {
        let (name_id, new_name) = intern(
            &mut self.option_name_ids,
            name.clone(),
            self.option_names.len(),
        );
        if new_name {
            self.option_names.push(name.clone());
        }
        let (id, new) = intern(
            &mut self.option_ids,
            (name, value.clone()),
            self.options.len(),
        );
        if new {
            self.options.push((name_id, value));
        }
        id
    }

    /// How many products are indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no product is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The filters of `f` as interned ids. Terms no product has can match
    /// nothing.
    fn matcher(&self, f: &ListingFilter<'_>) -> Matcher {
        let categories: Option<Vec<bool>> = f.category_ids.map(|ids| {
            let mut wanted = vec![false; self.categories.len()];
            for id in ids {
                if let Some(&i) = self.category_ids.get(id) {
                    wanted[i as usize] = true;
                }
            }
            wanted
        });
        let tags: Option<Vec<u32>> = f
            .tags
            .iter()
            .map(|t| self.tag_ids.get(t).copied())
            .collect();
        let mut options: Vec<OptionFilter> = f
            .options
            .iter()
            .map(|(name, values)| OptionFilter {
                name: self.option_name_ids.get(name).copied(),
                values: values
                    .iter()
                    .filter_map(|v| self.option_ids.get(&(name.clone(), v.clone())).copied())
                    .collect(),
            })
            .collect();
        // Listings take at most 3 option filters (`ProductQuery`); the
        // mask has room for 32.
        options.truncate(32);
        let all_options: u32 = (0..options.len()).fold(0, |m, i| m | 1 << i);
        Matcher {
            only_active: f.only_active,
            categories,
            min_price: f.min_price,
            max_price: f.max_price,
            in_stock: f.in_stock,
            tags,
            options,
            all_options,
        }
    }

    /// The ids of one page of the listing `f` selects in `ordering`
    /// (`offset`, then at most `limit`), and how many products it has.
    pub fn page(
        &self,
        f: &ListingFilter<'_>,
        ordering: Ordering,
        limit: usize,
        offset: usize,
    ) -> (Vec<Uuid>, usize) {
        let m = self.matcher(f);
        let mut hits: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| m.flags(e).is_some_and(|x| x.all()))
            .collect();
        let count = hits.len();
        let rank = |e: &Entry| match ordering {
            Ordering::PriceAsc | Ordering::PriceDesc => e.ranks.price,
            Ordering::NameAsc | Ordering::NameDesc => e.ranks.name,
            Ordering::CreatedAsc | Ordering::CreatedDesc => e.ranks.created,
        };
        let descending = matches!(
            ordering,
            Ordering::PriceDesc | Ordering::NameDesc | Ordering::CreatedDesc
        );
        let key = |e: &&Entry| {
            let r = rank(e);
            if descending {
                u32::MAX - r
            } else {
                r
            }
        };
        let end = offset.saturating_add(limit).min(count);
        if offset >= end {
            return (Vec::new(), count);
        }
        // Only the first `end` need ordering.
        if end < count {
            hits.select_nth_unstable_by_key(end, key);
            hits.truncate(end);
        }
        hits.sort_unstable_by_key(key);
        (hits[offset..].iter().map(|e| e.id).collect(), count)
    }

    /// The facets of the listing `f` selects.
    pub fn facets(&self, f: &ListingFilter<'_>) -> Facets {
        let m = self.matcher(f);
        let mut category_counts = vec![0_i64; self.categories.len()];
        let mut tag_counts = vec![0_i64; self.tags.len()];
        let mut option_counts = vec![0_i64; self.options.len()];
        let (mut min, mut max) = (None::<i64>, None::<i64>);
        let (mut with_stock, mut without_stock) = (0_i64, 0_i64);

        for e in &self.entries {
            let Some(Flags {
                fc,
                fp,
                fs,
                ft,
                fo,
                held,
            }) = m.flags(e)
            else {
                continue;
            };
            let options = &m.options;

            if fp && fs && ft && fo {
                if let Some(c) = e.category {
                    category_counts[c as usize] += 1;
                }
            }
            if fc && fp && fs && fo {
                for &t in e.tags.iter() {
                    tag_counts[t as usize] += 1;
                }
            }
            if fc && fs && ft && fo {
                min = Some(min.map_or(e.price, |m| m.min(e.price)));
                max = Some(max.map_or(e.price, |m| m.max(e.price)));
            }
            if fc && fp && ft && fo {
                if e.stock > 0 {
                    with_stock += 1;
                } else if e.stock == 0 {
                    without_stock += 1;
                }
            }
            if fc && fp && fs && ft {
                for &v in e.options.iter() {
                    let name = self.options[v as usize].0;
                    // Every option filter but those on this value's option.
                    let others = options
                        .iter()
                        .enumerate()
                        .filter(|(_, o)| o.name != Some(name))
                        .all(|(i, _)| held & (1 << i) != 0);
                    if others {
                        option_counts[v as usize] += 1;
                    }
                }
            }
        }

        let mut category_facet: Vec<CategoryCount> = category_counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .filter_map(|(i, &n)| {
                let c = self.categories[i].as_ref()?;
                Some(CategoryCount {
                    id: c.id,
                    slug: c.slug.clone(),
                    name: c.name.clone(),
                    count: n,
                })
            })
            .collect();
        category_facet.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.slug.cmp(&b.slug)));

        let mut option_facet: BTreeMap<String, Vec<ValueCount>> = BTreeMap::new();
        for (v, &n) in option_counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let (name, value) = &self.options[v];
            option_facet
                .entry(self.option_names[*name as usize].clone())
                .or_default()
                .push(ValueCount {
                    value: value.clone(),
                    count: n,
                });
        }
        for values in option_facet.values_mut() {
            sort_counts(values);
        }

        Facets {
            categories: category_facet,
            tags: value_counts(&self.tags, &tag_counts),
            options: option_facet,
            price: PriceRange { min, max },
            in_stock: StockCounts {
                with_stock,
                without_stock,
            },
        }
    }
}

/// Most first, then by value: the order the SQL gives.
fn sort_counts(values: &mut [ValueCount]) {
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
}

fn value_counts(names: &[String], counts: &[i64]) -> Vec<ValueCount> {
    let mut out: Vec<ValueCount> = counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| ValueCount {
            value: names[i].clone(),
            count: n,
        })
        .collect();
    sort_counts(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIZES: [&str; 3] = ["S", "M", "L"];
    const COLOURS: [&str; 2] = ["red", "blue"];
    const TAGS: [&str; 3] = ["cotton", "sale", "new"];

    fn category(n: u128) -> CategoryName {
        CategoryName {
            id: Uuid::from_u128(n),
            slug: format!("c{n}"),
            name: format!("Category {n}"),
        }
    }

    fn source(
        category: Option<u128>,
        price: i64,
        stock: i64,
        tags: &[&str],
        options: &[(&str, &str)],
    ) -> IndexedProduct {
        IndexedProduct {
            id: Uuid::from_u128(u128::from(price as u64)),
            ranks: Ranks::default(),
            is_active: true,
            category_id: category.map(Uuid::from_u128),
            price,
            stock,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            options: options
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn each_facet_ignores_its_own_filter() {
        let index = ListingIndex::build(
            vec![category(1), category(2)],
            [
                source(
                    Some(1),
                    100,
                    3,
                    &["sale"],
                    &[("size", "M"), ("colour", "red")],
                ),
                source(Some(1), 200, 0, &[], &[("size", "L"), ("colour", "red")]),
                source(
                    Some(2),
                    300,
                    1,
                    &["sale"],
                    &[("size", "M"), ("colour", "blue")],
                ),
            ],
        );
        let options = vec![("size".to_owned(), vec!["M".to_owned()])];
        let ids = [Uuid::from_u128(1)];
        let f = ListingFilter {
            category_ids: Some(&ids),
            options: &options,
            ..ListingFilter::default()
        };
        let facets = index.facets(&f);
        // Categories ignore the category filter but keep size=M.
        assert_eq!(
            facets
                .categories
                .iter()
                .map(|c| (c.slug.as_str(), c.count))
                .collect::<Vec<_>>(),
            [("c1", 1), ("c2", 1)]
        );
        // Sizes ignore size=M but keep the category: M and L of c1.
        let sizes: Vec<_> = facets.options["size"]
            .iter()
            .map(|v| (v.value.as_str(), v.count))
            .collect();
        assert_eq!(sizes, [("L", 1), ("M", 1)]);
        // Colours keep both filters: only the first product.
        assert_eq!(facets.options["colour"].len(), 1);
        assert_eq!(
            facets.price,
            PriceRange {
                min: Some(100),
                max: Some(100)
            }
        );
        assert_eq!(facets.in_stock.with_stock, 1);
    }

    #[test]
    fn unknown_terms_match_nothing() {
        let index = ListingIndex::build(vec![category(1)], [source(Some(1), 1, 1, &["sale"], &[])]);
        let tags = vec!["nope".to_owned()];
        let f = ListingFilter {
            tags: &tags,
            ..ListingFilter::default()
        };
        let facets = index.facets(&f);
        assert!(facets.categories.is_empty());
        assert_eq!(
            facets.price,
            PriceRange {
                min: None,
                max: None
            }
        );
        // The tag facet itself ignores the tag filter.
        assert_eq!(facets.tags.len(), 1);
    }

    /// A brute-force count straight from the sources, one facet at a time.
    fn brute(cats: &[CategoryName], products: &[IndexedProduct], f: &ListingFilter<'_>) -> Facets {
        #[derive(PartialEq, Clone, Copy)]
        enum Skip {
            Category,
            Price,
            Stock,
            Tags,
            Option,
        }
        let matches = |p: &IndexedProduct, skip: Skip, except_option: Option<&str>| {
            (!f.only_active || p.is_active)
                && (skip == Skip::Category
                    || f.category_ids
                        .is_none_or(|ids| p.category_id.is_some_and(|c| ids.contains(&c))))
                && (skip == Skip::Price
                    || (f.min_price.is_none_or(|m| p.price >= m)
                        && f.max_price.is_none_or(|m| p.price <= m)))
                && (skip == Skip::Stock || f.in_stock.is_none_or(|s| (p.stock > 0) == s))
                && (skip == Skip::Tags || f.tags.iter().all(|t| p.tags.contains(t)))
                && f.options.iter().all(|(name, values)| {
                    Some(name.as_str()) == except_option
                        || p.options
                            .iter()
                            .any(|(n, v)| n == name && values.contains(v))
                })
        };
        let mut categories: BTreeMap<Uuid, i64> = BTreeMap::new();
        let mut tags: BTreeMap<String, i64> = BTreeMap::new();
        let mut options: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        let (mut min, mut max) = (None::<i64>, None::<i64>);
        let (mut with_stock, mut without_stock) = (0, 0);
        for p in products {
            if matches(p, Skip::Category, None) {
                if let Some(c) = p.category_id.filter(|c| cats.iter().any(|k| k.id == *c)) {
                    *categories.entry(c).or_default() += 1;
                }
            }
            if matches(p, Skip::Tags, None) {
                for t in &p.tags {
                    *tags.entry(t.clone()).or_default() += 1;
                }
            }
            if matches(p, Skip::Price, None) {
                min = Some(min.map_or(p.price, |m: i64| m.min(p.price)));
                max = Some(max.map_or(p.price, |m: i64| m.max(p.price)));
            }
            if matches(p, Skip::Stock, None) {
                if p.stock > 0 {
                    with_stock += 1;
                } else {
                    without_stock += 1;
                }
            }
            for (n, v) in &p.options {
                if matches(p, Skip::Option, Some(n)) {
                    *options
                        .entry(n.clone())
                        .or_default()
                        .entry(v.clone())
                        .or_default() += 1;
                }
            }
        }
        let mut category_facet: Vec<CategoryCount> = categories
            .into_iter()
            .map(|(id, count)| {
                let c = cats.iter().find(|c| c.id == id).expect("known category");
                CategoryCount {
                    id,
                    slug: c.slug.clone(),
                    name: c.name.clone(),
                    count,
                }
            })
            .collect();
        category_facet.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.slug.cmp(&b.slug)));
        let to_counts = |m: BTreeMap<String, i64>| {
            let mut v: Vec<ValueCount> = m
                .into_iter()
                .map(|(value, count)| ValueCount { value, count })
                .collect();
            sort_counts(&mut v);
            v
        };
        Facets {
            categories: category_facet,
            tags: to_counts(tags),
            options: options
                .into_iter()
                .map(|(k, m)| (k, to_counts(m)))
                .collect(),
            price: PriceRange { min, max },
            in_stock: StockCounts {
                with_stock,
                without_stock,
            },
        }
    }

    fn arb_product() -> impl Strategy<Value = IndexedProduct> {
        (
            any::<bool>(),
            prop::option::of(0_u128..4),
            0_i64..50,
            0_i64..3,
            prop::sample::subsequence(TAGS.to_vec(), 0..=3),
            prop::sample::subsequence(SIZES.to_vec(), 0..=3),
            prop::sample::subsequence(COLOURS.to_vec(), 0..=2),
        )
            .prop_map(
                |(is_active, category, price, stock, tags, sizes, colours)| {
                    let mut options: Vec<(String, String)> = sizes
                        .iter()
                        .map(|s| ("size".to_owned(), s.to_string()))
                        .collect();
                    options.extend(colours.iter().map(|c| ("colour".to_owned(), c.to_string())));
                    IndexedProduct {
                        id: Uuid::nil(),
                        ranks: Ranks::default(),
                        is_active,
                        category_id: category.map(Uuid::from_u128),
                        price,
                        stock,
                        tags: tags.iter().map(|t| t.to_string()).collect(),
                        options,
                    }
                },
            )
    }

    fn arb_values(all: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<String>>> {
        prop::option::of(
            prop::sample::subsequence(all.to_vec(), 1..=all.len())
                .prop_map(|v| v.iter().map(|s| s.to_string()).collect()),
        )
    }

    proptest! {
        /// The index counts exactly what a product-by-product count gives,
        /// under any mix of filters.
        #[test]
        fn index_agrees_with_brute_force(
            products in prop::collection::vec(arb_product(), 0..40),
            only_active in any::<bool>(),
            cats in prop::option::of(prop::sample::subsequence(vec![0_u128, 1, 2, 3, 9], 1..=3)),
            min_price in prop::option::of(0_i64..50),
            max_price in prop::option::of(0_i64..50),
            in_stock in prop::option::of(any::<bool>()),
            tags in prop::sample::subsequence(vec!["cotton", "sale", "unknown"], 0..=2),
            sizes in arb_values(&SIZES),
            colours in arb_values(&COLOURS),
            keys in prop::collection::vec((0_u8..5, 0_u8..5), 40),
            ordering in 0_usize..6,
            limit in 0_usize..8,
            offset in 0_usize..30,
        ) {
            // Category 3 is named by products but unknown to the catalog.
            let categories: Vec<CategoryName> = (0..3).map(category).collect();
            let cat_ids: Option<Vec<Uuid>> = cats.map(|c| c.into_iter().map(Uuid::from_u128).collect());
            let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
            let mut options = Vec::new();
            if let Some(s) = sizes { options.push(("size".to_owned(), s)); }
            if let Some(c) = colours { options.push(("colour".to_owned(), c)); }
            let f = ListingFilter {
                only_active,
                category_ids: cat_ids.as_deref(),
                min_price,
                max_price,
                in_stock,
                tags: &tags,
                options: &options,
            };
            let products = with_ranks(products, &keys);
            let index = ListingIndex::build(categories.clone(), products.clone());
            prop_assert_eq!(index.len(), products.len());
            prop_assert_eq!(index.facets(&f), brute(&categories, &products, &f));
            let ordering = ORDERINGS[ordering];
            let (page, count) = index.page(&f, ordering, limit, offset);
            let (expected, expected_count) = brute_page(&products, &keys, &f, ordering, limit, offset);
            prop_assert_eq!(count, expected_count);
            prop_assert_eq!(page, expected);
        }
    }

    const ORDERINGS: [Ordering; 6] = [
        Ordering::PriceAsc,
        Ordering::PriceDesc,
        Ordering::NameAsc,
        Ordering::NameDesc,
        Ordering::CreatedAsc,
        Ordering::CreatedDesc,
    ];

    /// Ids in list order, and each order's rank as the database would give
    /// it: by price, by `keys.0` (the name) and by `keys.1` (the creation
    /// time), each then by id.
    fn with_ranks(mut products: Vec<IndexedProduct>, keys: &[(u8, u8)]) -> Vec<IndexedProduct> {
        for (i, p) in products.iter_mut().enumerate() {
            p.id = Uuid::from_u128(1000 - i as u128);
        }
        let rank_by = |key: &dyn Fn(usize) -> i64| -> Vec<u32> {
            let mut order: Vec<usize> = (0..products.len()).collect();
            order.sort_by_key(|&i| (key(i), products[i].id));
            let mut ranks = vec![0; products.len()];
            for (r, i) in order.into_iter().enumerate() {
                ranks[i] = r as u32;
            }
            ranks
        };
        let price = rank_by(&|i| products[i].price);
        let name = rank_by(&|i| i64::from(keys[i].0));
        let created = rank_by(&|i| i64::from(keys[i].1));
        for (i, p) in products.iter_mut().enumerate() {
            p.ranks = Ranks {
                price: price[i],
                name: name[i],
                created: created[i],
            };
        }
        products
    }

    /// One page, by filtering and sorting the products themselves.
    fn brute_page(
        products: &[IndexedProduct],
        keys: &[(u8, u8)],
        f: &ListingFilter<'_>,
        ordering: Ordering,
        limit: usize,
        offset: usize,
    ) -> (Vec<Uuid>, usize) {
        let mut hits: Vec<(i64, Uuid)> = products
            .iter()
            .zip(keys)
            .filter(|(p, _)| {
                (!f.only_active || p.is_active)
                    && f.category_ids
                        .is_none_or(|ids| p.category_id.is_some_and(|c| ids.contains(&c)))
                    && f.min_price.is_none_or(|m| p.price >= m)
                    && f.max_price.is_none_or(|m| p.price <= m)
                    && f.in_stock.is_none_or(|s| (p.stock > 0) == s)
                    && f.tags.iter().all(|t| p.tags.contains(t))
                    && f.options.iter().all(|(name, values)| {
                        p.options
                            .iter()
                            .any(|(n, v)| n == name && values.contains(v))
                    })
            })
            .map(|(p, k)| {
                let key = match ordering {
                    Ordering::PriceAsc | Ordering::PriceDesc => p.price,
                    Ordering::NameAsc | Ordering::NameDesc => i64::from(k.0),
                    Ordering::CreatedAsc | Ordering::CreatedDesc => i64::from(k.1),
                };
                (key, p.id)
            })
            .collect();
        hits.sort();
        if matches!(
            ordering,
            Ordering::PriceDesc | Ordering::NameDesc | Ordering::CreatedDesc
        ) {
            hits.reverse();
        }
        let count = hits.len();
        let page = hits
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, id)| id)
            .collect();
        (page, count)
    }
}

//! What a cached catalog response depends on, and what a write changed,
//! so that a write evicts only the responses it can have made stale.
//!
//! Most catalog writes while a shop is open are stock moves (every order
//! holds units, every cancellation gives them back) and a few are price
//! changes. Each names the products it moved; a cached response names the
//! products it shows and whether its membership hangs on stock or price
//! (an `in_stock` filter, a price filter or ordering, facets). Every other
//! write (names, categories, images, activation) changes everything.
//!
//! No I/O: the caches store [`Dependencies`] beside each value in the
//! wire form here, and compare them with each [`Changed`].

use std::collections::BTreeSet;

use uuid::Uuid;

/// What a cached response shows and what its membership hangs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// The products whose data is in the response.
    pub products: Vec<Uuid>,
    /// Which products are in it (or its counts) depends on which products
    /// have stock: an `in_stock` filter, or facets.
    pub stock: bool,
    /// Which products are in it, their order, or its counts depend on
    /// prices: a price filter, price ordering, or facets.
    pub price: bool,
}

impl Dependencies {
    /// The wire form beside a cached value: `<flags> <ids>`, flags `s`
    /// and/or `p` or `-`, ids comma-separated or `-`.
    pub fn encode(&self) -> String {
        let flags = flags_word(self.stock, self.price);
        let ids = if self.products.is_empty() {
            "-".to_owned()
        } else {
            self.products
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{flags} {ids}")
    }

    /// Parses [`Dependencies::encode`]'s form.
    pub fn decode(raw: &str) -> Option<Self> {
        let (flags, ids) = raw.split_once(' ')?;
        let products = if ids == "-" {
            Vec::new()
        } else {
            ids.split(',')
                .map(|id| id.parse().ok())
                .collect::<Option<Vec<Uuid>>>()?
        };
        Some(Self {
            products,
            stock: flags.contains('s'),
            price: flags.contains('p'),
        })
    }
}

/// The flags word of the wire form: `s` (stock), `p` (price), or `-`.
fn flags_word(stock: bool, price: bool) -> &'static str {
    match (stock, price) {
        (true, true) => "sp",
        (true, false) => "s",
        (false, true) => "p",
        (false, false) => "-",
    }
}

/// What one committed catalog write changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Anything may have changed: every cached response is stale.
    All,
    /// Only stock and prices of these products moved.
    Products(ProductsMoved),
}

/// Products whose stock or prices moved, and whether any of them moved in
/// a way that changes listings they are not on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductsMoved {
    pub ids: BTreeSet<Uuid>,
    /// Some product went from having stock to none or back (the sign of
    /// its total changed): `in_stock` listings and facets change.
    pub stock_crossed_zero: bool,
    /// Some product's price changed: price filters, orderings and facets
    /// change.
    pub repriced: bool,
}

impl ProductsMoved {
    /// The movement of one product, from its totals before and after.
    pub fn of(id: Uuid, before: (i64, i32), after: (i64, i32)) -> Self {
        let (old_price, old_stock) = before;
        let (new_price, new_stock) = after;
        Self {
            ids: BTreeSet::from([id]),
            stock_crossed_zero: old_stock.signum() != new_stock.signum(),
            repriced: old_price != new_price,
        }
    }

    /// Both movements together.
    pub fn merge(&mut self, other: ProductsMoved) {
        self.ids.extend(other.ids);
        self.stock_crossed_zero |= other.stock_crossed_zero;
        self.repriced |= other.repriced;
    }

    /// Whether nothing moved.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether a response with `deps` may be stale after this movement.
    pub fn touches(&self, deps: &Dependencies) -> bool {
        (deps.stock && self.stock_crossed_zero)
            || (deps.price && self.repriced)
            || deps.products.iter().any(|id| self.ids.contains(id))
    }

    /// The flags word of [`ProductsMoved::encode`]: which classes moved.
    pub fn flags(&self) -> &'static str {
        flags_word(self.stock_crossed_zero, self.repriced)
    }

    /// The wire form on the invalidation channel: `<flags> <ids>` as in
    /// [`Dependencies::encode`].
    pub fn encode(&self) -> String {
        Dependencies {
            products: self.ids.iter().copied().collect(),
            stock: self.stock_crossed_zero,
            price: self.repriced,
        }
        .encode()
    }

    /// Parses [`ProductsMoved::encode`]'s form.
    pub fn decode(raw: &str) -> Option<Self> {
        let d = Dependencies::decode(raw)?;
        Some(Self {
            ids: d.products.into_iter().collect(),
            stock_crossed_zero: d.stock,
            repriced: d.price,
        })
    }
}

impl Changed {
    /// Whether a response with `deps` may be stale after this change.
    pub fn touches(&self, deps: &Dependencies) -> bool {
        match self {
            Changed::All => true,
            Changed::Products(moved) => moved.touches(deps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_stock_move_touches_only_what_shows_the_product() {
        let moved = ProductsMoved::of(id(1), (1000, 5), (1000, 4));
        let shows = Dependencies {
            products: vec![id(2), id(1)],
            ..Dependencies::default()
        };
        let other = Dependencies {
            products: vec![id(2), id(3)],
            stock: true,
            price: true,
        };
        assert!(moved.touches(&shows));
        assert!(!moved.touches(&other), "no crossing, no reprice");
        assert!(Changed::All.touches(&other));
        assert!(!moved.touches(&Dependencies::default()));
    }

    #[test]
    fn crossing_zero_touches_stock_dependent_pages_only() {
        let sold_out = ProductsMoved::of(id(1), (1000, 1), (1000, 0));
        assert!(sold_out.stock_crossed_zero && !sold_out.repriced);
        let in_stock_page = Dependencies {
            products: vec![id(9)],
            stock: true,
            price: false,
        };
        let price_page = Dependencies {
            products: vec![id(9)],
            stock: false,
            price: true,
        };
        assert!(sold_out.touches(&in_stock_page));
        assert!(!sold_out.touches(&price_page));
        let repriced = ProductsMoved::of(id(1), (1000, 3), (900, 3));
        assert!(repriced.touches(&price_page) && !repriced.touches(&in_stock_page));
        // Negative totals (oversold by an admin) count as a sign of their own.
        assert!(ProductsMoved::of(id(1), (1, 0), (1, -1)).stock_crossed_zero);
        assert!(!ProductsMoved::of(id(1), (1, 7), (1, 2)).stock_crossed_zero);
    }

    #[test]
    fn merging_keeps_every_product_and_flag() {
        let mut a = ProductsMoved::of(id(1), (1, 1), (1, 0));
        a.merge(ProductsMoved::of(id(2), (1, 4), (2, 4)));
        assert_eq!(a.ids, BTreeSet::from([id(1), id(2)]));
        assert!(a.stock_crossed_zero && a.repriced);
        assert!(!a.is_empty() && ProductsMoved::default().is_empty());
    }

    #[test]
    fn garbage_does_not_decode() {
        for raw in ["", "s", "s not-a-uuid", "p 1,2"] {
            assert_eq!(Dependencies::decode(raw), None, "{raw:?}");
        }
        assert_eq!(Dependencies::decode("- -"), Some(Dependencies::default()));
    }

    proptest! {
        #[test]
        fn the_wire_form_round_trips(
            ids in proptest::collection::vec(any::<u128>(), 0..20),
            stock: bool,
            price: bool,
        ) {
            let deps = Dependencies { products: ids.iter().map(|n| id(*n)).collect(), stock, price };
            prop_assert_eq!(Dependencies::decode(&deps.encode()), Some(deps.clone()));
            let moved = ProductsMoved {
                ids: deps.products.iter().copied().collect(),
                stock_crossed_zero: stock,
                repriced: price,
            };
            prop_assert_eq!(ProductsMoved::decode(&moved.encode()), Some(moved));
        }

        #[test]
        fn a_move_touches_a_page_iff_they_share_a_product_or_a_moved_class(
            page in proptest::collection::vec(0u128..30, 0..10),
            moved_ids in proptest::collection::btree_set(0u128..30, 1..5),
            stock: bool, price: bool, crossed: bool, repriced: bool,
        ) {
            let deps = Dependencies { products: page.iter().map(|n| id(*n)).collect(), stock, price };
            let moved = ProductsMoved {
                ids: moved_ids.iter().map(|n| id(*n)).collect(),
                stock_crossed_zero: crossed,
                repriced,
            };
            let shares = page.iter().any(|n| moved_ids.contains(n));
            prop_assert_eq!(moved.touches(&deps), shares || (stock && crossed) || (price && repriced));
        }
    }
}

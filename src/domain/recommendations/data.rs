//! Purchase data in dense indices: users, items and orders, each order a
//! user's basket at a point in their history.

use std::collections::HashMap;

/// One order: whose, when (any increasing number: a time or an order
/// number), and which items.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub user: usize,
    pub seq: f64,
    pub items: Vec<usize>,
}

/// Content features of an item, as tokens with weights (category path with
/// its ancestors, tags, price band). Empty when only interactions are known.
pub type Features = Vec<(String, f32)>;

/// Users, items and orders with dense indices, and the external ids.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    pub orders: Vec<Order>,
    /// Per item; all empty when there are no content features.
    pub features: Vec<Features>,
    /// Per item: whether it may be recommended (active and in stock).
    pub available: Vec<bool>,
    /// When `seq` is a clock: the age (in `seq` units) at which a purchase
    /// counts half towards popularity. `None` when `seq` only orders each
    /// user's own orders.
    pub popularity_half_life: Option<f64>,
    user_index: HashMap<String, usize>,
    item_index: HashMap<String, usize>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of item `id`, adding it (available, no features) if new.
    pub fn item(&mut self, id: &str) -> usize {
        if let Some(&i) = self.item_index.get(id) {
            return i;
        }
        let i = self.item_ids.len();
        self.item_ids.push(id.to_owned());
        self.item_index.insert(id.to_owned(), i);
        self.features.push(Vec::new());
        self.available.push(true);
        i
    }

    /// The index of user `id`, adding it if new.
    pub fn user(&mut self, id: &str) -> usize {
        if let Some(&u) = self.user_index.get(id) {
            return u;
        }
        let u = self.user_ids.len();
        self.user_ids.push(id.to_owned());
        self.user_index.insert(id.to_owned(), u);
        u
    }

    /// The index of a known item.
    pub fn item_index(&self, id: &str) -> Option<usize> {
        self.item_index.get(id).copied()
    }

    /// The index of a known user.
    pub fn user_index(&self, id: &str) -> Option<usize> {
        self.user_index.get(id).copied()
    }

    /// Whether any item has content features.
    pub fn has_features(&self) -> bool {
        self.features.iter().any(|f| !f.is_empty())
    }

    /// Splits off each user's last order (by `seq`) as the held-out set;
    /// users with a single order keep it for training and are not
    /// evaluated. Returns (training dataset, held-out orders).
    pub fn hold_out_last(&self) -> (Dataset, Vec<Order>) {
        let held: std::collections::HashSet<usize> =
            last_orders(&self.orders, |_| true).into_iter().collect();
        let mut train = self.clone();
        train.orders = self
            .orders
            .iter()
            .enumerate()
            .filter(|(i, _)| !held.contains(i))
            .map(|(_, o)| o.clone())
            .collect();
        let mut test: Vec<Order> = held.iter().map(|&i| self.orders[i].clone()).collect();
        test.sort_by_key(|o| o.user);
        (train, test)
    }

    /// [`hold_out_last`](Self::hold_out_last) `rounds` times over, without
    /// copying the dataset: each order's level. The first round's held-out
    /// orders get level `rounds`, the next round's (each user's last among
    /// those left) `rounds - 1`, and so on; the orders trained on in the
    /// end get 0. Training on the orders of level at most k is training on
    /// what is left after `rounds - k` rounds.
    pub fn hold_out_levels(&self, rounds: u8) -> Vec<u8> {
        let mut levels = vec![0u8; self.orders.len()];
        for round in 0..rounds {
            let level = rounds - round;
            let held = last_orders(&self.orders, |i| levels[i] == 0);
            for i in held {
                levels[i] = level;
            }
        }
        levels
    }

    /// The orders of level `level` (see
    /// [`hold_out_levels`](Self::hold_out_levels)), by user.
    pub fn orders_at(&self, levels: &[u8], level: u8) -> Vec<Order> {
        let mut out: Vec<Order> = self
            .orders
            .iter()
            .zip(levels)
            .filter(|(_, l)| **l == level)
            .map(|(o, _)| o.clone())
            .collect();
        out.sort_by_key(|o| o.user);
        out
    }

    /// Each user's training history: (item, seq) pairs.
    pub fn histories(&self) -> Vec<Vec<(usize, f64)>> {
        let mut h = vec![Vec::new(); self.user_ids.len()];
        for o in &self.orders {
            for &i in &o.items {
                h[o.user].push((i, o.seq));
            }
        }
        h
    }
}

/// Indices of each user's last order (by `seq`; the first of equal ones)
/// among the orders `keep` admits, for users with more than one of those.
fn last_orders(orders: &[Order], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut last: HashMap<usize, usize> = HashMap::new();
    let mut count: HashMap<usize, usize> = HashMap::new();
    for (i, o) in orders.iter().enumerate().filter(|(i, _)| keep(*i)) {
        *count.entry(o.user).or_default() += 1;
        let newer = match last.get(&o.user) {
            Some(&j) => o.seq > orders[j].seq,
            None => true,
        };
        if newer {
            last.insert(o.user, i);
        }
    }
    let mut held: Vec<usize> = last
        .into_iter()
        .filter(|(u, _)| count.get(u).copied().unwrap_or(0) > 1)
        .map(|(_, i)| i)
        .collect();
    held.sort_unstable();
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_order_of_users_with_several_is_held_out() {
        let mut d = Dataset::new();
        let (a, b) = (d.user("a"), d.user("b"));
        let (x, y, z) = (d.item("x"), d.item("y"), d.item("z"));
        d.orders = vec![
            Order {
                user: a,
                seq: 2.0,
                items: vec![y],
            },
            Order {
                user: a,
                seq: 1.0,
                items: vec![x],
            },
            Order {
                user: b,
                seq: 1.0,
                items: vec![z],
            },
        ];
        let (train, test) = d.hold_out_last();
        assert_eq!(
            test,
            vec![Order {
                user: a,
                seq: 2.0,
                items: vec![y]
            }]
        );
        assert_eq!(train.orders.len(), 2);
        assert_eq!(train.histories()[a], vec![(x, 1.0)]);
        assert_eq!(train.histories()[b], vec![(z, 1.0)]);
    }

    #[test]
    fn levels_repeat_the_hold_out_on_what_is_left() {
        let mut d = Dataset::new();
        let (a, b) = (d.user("a"), d.user("b"));
        let x = d.item("x");
        let at = |user, seq| Order {
            user,
            seq,
            items: vec![x],
        };
        // a: three orders; b: two.
        d.orders = vec![at(a, 3.0), at(b, 1.0), at(a, 1.0), at(b, 2.0), at(a, 2.0)];
        assert_eq!(d.hold_out_levels(2), vec![2, 0, 0, 2, 1]);
        assert_eq!(d.hold_out_levels(1), vec![1, 0, 0, 1, 0]);
        let levels = d.hold_out_levels(2);
        let (train, test) = d.hold_out_last();
        assert_eq!(d.orders_at(&levels, 2), test);
        assert_eq!(d.orders_at(&levels, 1), train.hold_out_last().1);
    }
}

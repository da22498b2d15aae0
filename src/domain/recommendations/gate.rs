//! The promotion gate: a new build is served only if it beats the
//! popularity baseline and does not trail the live model by more than a
//! tolerance, both on the same held-out purchases.

/// Decides on a build with blend recall `candidate` and popularity recall
/// `baseline`, given the live model's blend recall (if any). `Err` says why
/// the build is refused.
pub fn promote(
    candidate: f64,
    baseline: f64,
    live: Option<f64>,
    tolerance: f64,
    k: usize,
) -> Result<(), String> {
    if candidate < baseline {
        return Err(format!(
            "blend recall@{k} {candidate:.4} is below the popularity baseline {baseline:.4}"
        ));
    }
    if let Some(live) = live.filter(|live| candidate + tolerance < *live) {
        return Err(format!(
            "blend recall@{k} {candidate:.4} trails the live model's {live:.4} by more than {tolerance}"
        ));
    }
    Ok(())
}

/// Whether the shop has grown enough since the last build for a build now,
/// rather than at the next timer: `new_orders` paid orders followed since
/// that build began, against the `model_orders` the live model holds. At
/// least `min_new` orders, and more than `fraction` of the model (so an
/// empty model is rebuilt once `min_new` orders arrive, and a big one is
/// not rebuilt for every few orders).
pub fn grown_enough(model_orders: usize, new_orders: usize, fraction: f64, min_new: usize) -> bool {
    new_orders >= min_new.max(1) && new_orders as f64 > fraction * model_orders as f64
}

/// The last weight search a build may reuse: how many orders the data had
/// then, and how many builds have reused it since.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastSearch {
    pub orders: usize,
    pub reused: u32,
}

/// Whether a build of `orders` orders searches the blend's weights afresh:
/// when there is no search to reuse (first build, or the last build was
/// refused), when the search has been reused by `every - 1` builds, or
/// when the orders grew by more than `growth` of those it was made on.
pub fn search_weights_now(
    last: Option<LastSearch>,
    orders: usize,
    every: u32,
    growth: f64,
) -> bool {
    match last {
        None => true,
        Some(last) => {
            last.reused + 1 >= every
                || orders as f64 > (1.0 + growth) * last.orders as f64
                || orders < last.orders / 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_searched_every_n_builds_or_when_the_shop_grew() {
        let last = |reused| {
            Some(LastSearch {
                orders: 1000,
                reused,
            })
        };
        assert!(search_weights_now(None, 1000, 6, 0.5));
        // Five builds reuse a search, the sixth searches.
        assert!(!search_weights_now(last(0), 1000, 6, 0.5));
        assert!(!search_weights_now(last(4), 1000, 6, 0.5));
        assert!(search_weights_now(last(5), 1000, 6, 0.5));
        // Every build searches at 1.
        assert!(search_weights_now(last(0), 1000, 1, 0.5));
        // Growth past the fraction, or a shop that shrank by half.
        assert!(!search_weights_now(last(0), 1500, 6, 0.5));
        assert!(search_weights_now(last(0), 1501, 6, 0.5));
        assert!(search_weights_now(last(0), 499, 6, 0.5));
    }

    #[test]
    fn a_shop_that_grew_by_the_fraction_is_rebuilt_and_a_few_orders_are_not() {
        // A seeded shop over an empty model: rebuilt.
        assert!(grown_enough(0, 160, 0.2, 10));
        // One new order over an empty model: not yet.
        assert!(!grown_enough(0, 1, 0.2, 10));
        // 10 % growth of a big model: not yet; 25 %: rebuilt.
        assert!(!grown_enough(1000, 100, 0.2, 10));
        assert!(grown_enough(1000, 250, 0.2, 10));
        // A minimum of 0 still needs one order.
        assert!(!grown_enough(0, 0, 0.0, 0));
    }

    #[test]
    fn a_build_worse_than_popularity_or_the_live_model_is_refused() {
        assert!(promote(0.02, 0.05, None, 0.02, 10)
            .expect_err("refused")
            .contains("popularity"));
        assert!(promote(0.10, 0.05, Some(0.20), 0.02, 10)
            .expect_err("refused")
            .contains("live"));
        assert_eq!(promote(0.19, 0.05, Some(0.20), 0.02, 10), Ok(()));
        assert_eq!(promote(0.10, 0.05, None, 0.02, 10), Ok(()));
        // No held-out users yet: nothing to lose against.
        assert_eq!(promote(0.0, 0.0, None, 0.02, 10), Ok(()));
    }
}

//! Rounding of minor units: half to even ("banker's rounding"), so that
//! rounding many lines has no upward bias.

/// `n / d` rounded half to even, for `n >= 0` and `d > 0`.
pub fn div_half_even(n: i128, d: i128) -> i128 {
    debug_assert!(n >= 0 && d > 0);
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn halves_go_to_the_even_neighbour() {
        assert_eq!(div_half_even(5, 2), 2); // 2.5
        assert_eq!(div_half_even(7, 2), 4); // 3.5
        assert_eq!(div_half_even(1, 2), 0); // 0.5
        assert_eq!(div_half_even(3, 2), 2); // 1.5
        assert_eq!(div_half_even(26, 10), 3); // 2.6
        assert_eq!(div_half_even(24, 10), 2); // 2.4
        assert_eq!(div_half_even(0, 7), 0);
    }

    proptest! {
        /// Never more than half a unit from the exact quotient.
        #[test]
        fn within_half_a_unit(n in 0_i128..1_000_000_000_000, d in 1_i128..1_000_000) {
            let q = div_half_even(n, d);
            prop_assert!((2 * (n - q * d)).abs() <= d);
        }
    }
}

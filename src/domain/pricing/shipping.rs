//! Shipping: which zone covers a destination, and what a method charges
//! for a parcel. A zone lists countries (ISO 3166-1 alpha-2) and may narrow
//! them to postal-code prefixes; a method's rate is flat, by weight band or
//! by subtotal band, optionally free from some subtotal on.

use serde::{Deserialize, Serialize};

/// A band of a subtotal rate: carts whose subtotal after discount is up
/// to and including `up_to` (minor units) pay `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub up_to: i64,
    pub amount: i64,
}

/// A band of a weight rate: parcels up to and including `up_to_grams`
/// pay `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightBand {
    pub up_to_grams: i64,
    pub amount: i64,
}

impl From<WeightBand> for Band {
    fn from(b: WeightBand) -> Self {
        Band {
            up_to: b.up_to_grams,
            amount: b.amount,
        }
    }
}

impl From<Band> for WeightBand {
    fn from(b: Band) -> Self {
        WeightBand {
            up_to_grams: b.up_to,
            amount: b.amount,
        }
    }
}

/// How a method prices a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rate {
    /// The same for every parcel.
    Flat { amount: i64 },
    /// By total weight; heavier than the last band: not offered.
    Weight {
        #[schema(min_items = 1, max_items = 50)]
        bands: Vec<WeightBand>,
    },
    /// By subtotal after discount; above the last band: not offered.
    Subtotal {
        #[schema(min_items = 1, max_items = 50)]
        bands: Vec<Band>,
    },
}

/// What a method's price depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parcel {
    /// Σ variant weight × quantity, over lines that need shipping.
    pub weight_grams: i64,
    /// The order's subtotal after its discount, in minor units.
    pub subtotal: i64,
}

/// The price of `rate` for `parcel`, `None` when the rate does not offer
/// one (past its last band); `free_over` makes it 0 from that subtotal on
/// (inclusive), as "free shipping over €50" reads.
pub fn quote(rate: &Rate, free_over: Option<i64>, parcel: Parcel) -> Option<i64> {
    let banded = |bands: &[Band], value: i64| {
        let mut sorted: Vec<Band> = bands.to_vec();
        sorted.sort_by_key(|b| b.up_to);
        sorted.iter().find(|b| value <= b.up_to).map(|b| b.amount)
    };
    let price = match rate {
        Rate::Flat { amount } => Some(*amount),
        Rate::Weight { bands } => {
            let bands: Vec<Band> = bands.iter().map(|&b| b.into()).collect();
            banded(&bands, parcel.weight_grams)
        }
        Rate::Subtotal { bands } => banded(bands, parcel.subtotal),
    }?;
    match free_over {
        Some(threshold) if parcel.subtotal >= threshold => Some(0),
        _ => Some(price.max(0)),
    }
}

/// A zone, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCover<'a> {
    pub countries: &'a [String],
    /// Empty: the whole of each country.
    pub postal_code_prefixes: &'a [String],
}

/// Postal codes compared without spaces or dashes, upper case: "sw1a 1aa"
/// and "SW1A1AA" are the same code.
fn canonical_postal(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// How closely `zone` covers the destination: `None` when it does not, else
/// the length of the postal prefix that matched (0 for a whole country).
pub fn covers(zone: &ZoneCover<'_>, country: &str, postal_code: &str) -> Option<usize> {
    if !zone
        .countries
        .iter()
        .any(|c| c.eq_ignore_ascii_case(country))
    {
        return None;
    }
    if zone.postal_code_prefixes.is_empty() {
        return Some(0);
    }
    let code = canonical_postal(postal_code);
    zone.postal_code_prefixes
        .iter()
        .map(|p| canonical_postal(p))
        .filter(|p| !p.is_empty() && code.starts_with(p.as_str()))
        .map(|p| p.len())
        .max()
}

/// Of `zones`, the indexes of those that serve the destination: the ones
/// that cover it most closely (a zone for postal codes `69` beats one for
/// all of France), so a shop can carve a region out of a country.
pub fn serving_zones(zones: &[ZoneCover<'_>], country: &str, postal_code: &str) -> Vec<usize> {
    let scored: Vec<(usize, usize)> = zones
        .iter()
        .enumerate()
        .filter_map(|(i, z)| covers(z, country, postal_code).map(|s| (i, s)))
        .collect();
    let best = scored.iter().map(|(_, s)| *s).max();
    scored
        .into_iter()
        .filter(|(_, s)| Some(*s) == best)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parcel(weight_grams: i64, subtotal: i64) -> Parcel {
        Parcel {
            weight_grams,
            subtotal,
        }
    }

    #[test]
    fn bands_take_the_first_that_holds_the_parcel() {
        let rate = Rate::Weight {
            bands: vec![
                WeightBand {
                    up_to_grams: 5000,
                    amount: 1500,
                },
                WeightBand {
                    up_to_grams: 1000,
                    amount: 500,
                },
            ],
        };
        assert_eq!(quote(&rate, None, parcel(0, 0)), Some(500));
        assert_eq!(quote(&rate, None, parcel(1000, 0)), Some(500));
        assert_eq!(quote(&rate, None, parcel(1001, 0)), Some(1500));
        assert_eq!(quote(&rate, None, parcel(5001, 0)), None);
        // Free over 50.00, from 50.00 itself; even past the last band the
        // method is not offered.
        assert_eq!(quote(&rate, Some(5000), parcel(10, 5000)), Some(0));
        assert_eq!(quote(&rate, Some(5000), parcel(10, 4999)), Some(500));
        assert_eq!(quote(&rate, Some(5000), parcel(9000, 9000)), None);
        let flat = Rate::Flat { amount: 499 };
        assert_eq!(quote(&flat, None, parcel(99_999, 1)), Some(499));
    }

    #[test]
    fn the_closest_zone_serves() {
        let fr = vec!["FR".to_owned()];
        let lyon = vec!["69".to_owned()];
        let zones = [
            ZoneCover {
                countries: &fr,
                postal_code_prefixes: &[],
            },
            ZoneCover {
                countries: &fr,
                postal_code_prefixes: &lyon,
            },
        ];
        assert_eq!(serving_zones(&zones, "fr", "69001"), [1]);
        assert_eq!(serving_zones(&zones, "FR", "75001"), [0]);
        assert!(serving_zones(&zones, "DE", "69001").is_empty());
        let uk = vec!["GB".to_owned()];
        let sw = vec!["SW1A".to_owned()];
        let london = [ZoneCover {
            countries: &uk,
            postal_code_prefixes: &sw,
        }];
        assert_eq!(serving_zones(&london, "GB", "sw1a 1aa"), [0]);
        assert!(serving_zones(&london, "GB", "EC1A 1BB").is_empty());
    }

    proptest! {
        /// A banded quote is the amount of the smallest band that holds the
        /// value, whatever order the bands are stored in, and free-over
        /// makes it 0 exactly from the threshold.
        #[test]
        fn banded_quotes(
            mut bands in prop::collection::vec((0_i64..10_000, 0_i64..5_000), 1..6),
            value in 0_i64..12_000,
            free_over in prop::option::of(0_i64..12_000),
        ) {
            bands.sort_unstable();
            bands.dedup_by_key(|b| b.0);
            let as_bands: Vec<Band> = bands.iter().map(|&(up_to, amount)| Band { up_to, amount }).collect();
            let mut shuffled = as_bands.clone();
            shuffled.reverse();
            let rate = Rate::Subtotal { bands: shuffled };
            let expected = bands.iter().find(|b| value <= b.0).map(|b| b.1);
            let got = quote(&rate, free_over, parcel(0, value));
            match expected {
                None => prop_assert_eq!(got, None),
                Some(amount) => {
                    let free = free_over.is_some_and(|t| value >= t);
                    prop_assert_eq!(got, Some(if free { 0 } else { amount }));
                }
            }
        }
    }
}

//! The shop's shipping and tax rules as one value, and what they charge
//! for a cart or an order going to a destination: the eligible shipping
//! methods with their prices, each line's tax rate, and the totals.
//!
//! The cart's view, checkout and `POST /orders/` all call [`price_checkout`]
//! with the rules they loaded, so a quote shown is the quote charged unless
//! the rules, the prices or the cart changed in between.
//!
//! Decisions (docs/API.md, "Shipping and tax"):
//! - a shop with no active shipping method ships at no charge, and a cart
//!   whose lines all skip shipping (`requires_shipping: false`) needs none;
//! - a method is eligible when it is active, in the cart's currency, in a
//!   zone that serves the destination most closely, and its rate offers a
//!   price for the parcel;
//! - a line's tax rate is the rate of its tax class for the destination's
//!   country and region, else for the country as a whole; a class with no
//!   rate there is charged nothing (as zero-rated), and so is everything
//!   while no destination is known;
//! - shipping is taxed at its method's class (default `standard`).

use std::collections::HashMap;

use uuid::Uuid;

use super::shipping::{quote, serving_zones, Parcel, Rate, ZoneCover};
use super::totals::{price, Line, OutOfRange, Shipping, TaxMode, Totals};

/// The tax class of a product or method that names none.
pub const STANDARD_CLASS: &str = "standard";

/// A shipping zone: the countries (ISO 3166-1 alpha-2, upper case) and,
/// optionally, postal-code prefixes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: Uuid,
    pub name: String,
    pub countries: Vec<String>,
    /// Empty: the whole of each country.
    pub postal_code_prefixes: Vec<String>,
}

/// A way of shipping within a zone, and its price rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    /// Offered only to carts in this currency.
    pub currency: String,
    pub rate: Rate,
    /// Free from this subtotal after discount (inclusive).
    pub free_over: Option<i64>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    /// The tax class shipping is taxed at.
    pub tax_class: String,
    pub is_active: bool,
}

/// A tax rate of one class in a country, or in one region of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRate {
    pub tax_class: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// A region of the country (a US state, a Canadian province); `None`
    /// for the whole country.
    pub region: Option<String>,
    /// In basis points: 2000 is 20 %.
    pub rate_bp: u32,
}

/// Everything pricing needs to know of the shop's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub zones: Vec<Zone>,
    pub methods: Vec<Method>,
    pub rates: Vec<TaxRate>,
    pub mode: TaxMode,
}

/// Where an order goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub postal_code: String,
    pub region: Option<String>,
}

/// Where an address ships to, as pricing reads it.
pub fn destination_of(address: &crate::domain::orders::address::ShippingAddress) -> Destination {
    Destination {
        country: address.country.clone(),
        postal_code: address.postal_code.clone(),
        region: Some(address.region.clone()).filter(|r| !r.trim().is_empty()),
    }
}

/// A line as pricing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine<K> {
    /// The variant: the canonical order of the discount split.
    pub key: K,
    pub unit_price: i64,
    pub quantity: i64,
    pub weight_grams: i64,
    pub requires_shipping: bool,
    pub tax_class: String,
}

/// An eligible method and its price for a parcel (as an order keeps it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MethodQuote {
    pub method_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    /// Shipping's tax rate at the destination, in basis points.
    pub tax_bp: u32,
}

/// Why an order cannot ship as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingProblem {
    /// The shop ships and a line needs shipping, but no method was chosen.
    Required,
    /// No zone covers the destination.
    NoShippingToDestination,
    /// The chosen method does not exist, is inactive, or does not serve
    /// this destination, currency or parcel.
    MethodIneligible,
}

impl ShippingProblem {
    /// The problem's stable code, as clients see it.
    pub fn code(self) -> &'static str {
        match self {
            ShippingProblem::Required => "shipping_required",
            ShippingProblem::NoShippingToDestination => "no_shipping_to_destination",
            ShippingProblem::MethodIneligible => "shipping_method_ineligible",
        }
    }

    /// A sentence for the client.
    pub fn message(self) -> &'static str {
        match self {
            ShippingProblem::Required => "choose a shipping method (shipping_method_id)",
            ShippingProblem::NoShippingToDestination => "the shop does not ship to this address",
            ShippingProblem::MethodIneligible => {
                "this shipping method is not offered for this cart and address"
            }
        }
    }
}

/// What a cart or order is charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout<K> {
    pub totals: Totals<K>,
    /// The method charged, if any.
    pub shipping: Option<MethodQuote>,
    /// Why the asked shipping could not be charged; the totals then carry
    /// no shipping (a cart shows them with a warning, checkout refuses).
    pub problem: Option<ShippingProblem>,
    /// The tax mode the figures were computed in.
    pub mode: TaxMode,
}

impl Rules {
    /// Rules that charge nothing: no zones, no rates.
    pub fn none(mode: TaxMode) -> Self {
        Self {
            zones: Vec::new(),
            methods: Vec::new(),
            rates: Vec::new(),
            mode,
        }
    }

    /// Whether the shop ships at all: some method is active.
    pub fn ships(&self) -> bool {
        self.methods.iter().any(|m| m.is_active)
    }

    /// The rate of `class` at `destination`, in basis points: the region's
    /// own rate when it has one, else the country's, else 0.
    pub fn tax_bp(&self, class: &str, destination: Option<&Destination>) -> u32 {
        let Some(d) = destination else { return 0 };
        let region = d.region.as_deref().map(str::trim).filter(|r| !r.is_empty());
        let mut country_rate = None;
        for r in &self.rates {
            if r.tax_class != class || !r.country.eq_ignore_ascii_case(&d.country) {
                continue;
            }
            match (&r.region, region) {
                (Some(rr), Some(dr)) if rr.eq_ignore_ascii_case(dr) => return r.rate_bp,
                (None, _) => country_rate = Some(r.rate_bp),
                _ => {}
            }
        }
        country_rate.unwrap_or(0)
    }

    /// The zones that serve `destination` most closely.
    fn serving(&self, destination: &Destination) -> Vec<Uuid> {
        let covers: Vec<ZoneCover<'_>> = self
            .zones
            .iter()
            .map(|z| ZoneCover {
                countries: &z.countries,
                postal_code_prefixes: &z.postal_code_prefixes,
            })
            .collect();
        serving_zones(&covers, &destination.country, &destination.postal_code)
            .into_iter()
            .map(|i| self.zones[i].id)
            .collect()
    }

    /// The methods offered for `parcel` in `currency` at `destination`,
    /// cheapest first (then by name and id, so the order is stable).
    pub fn eligible(
        &self,
        destination: &Destination,
        currency: &str,
        parcel: Parcel,
    ) -> Vec<MethodQuote> {
        let zones = self.serving(destination);
        let mut out: Vec<MethodQuote> = self
            .methods
            .iter()
            .filter(|m| m.is_active && zones.contains(&m.zone_id) && m.currency == currency)
            .filter_map(|m| {
                let amount = quote(&m.rate, m.free_over, parcel)?;
                Some(MethodQuote {
                    method_id: m.id,
                    name: m.name.clone(),
                    carrier: m.carrier.clone(),
                    amount,
                    currency: m.currency.clone(),
                    min_days: m.min_days,
                    max_days: m.max_days,
                    tax_bp: self.tax_bp(&m.tax_class, Some(destination)),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.amount, &a.name, a.method_id).cmp(&(b.amount, &b.name, b.method_id)));
        out
    }

    /// Whether some zone covers `destination` at all.
    pub fn covers(&self, destination: &Destination) -> bool {
        !self.serving(destination).is_empty()
    }
}

/// The parcel of `lines` after an order discount of `discount`: the weight
/// of the lines that ship, and the subtotal after discount.
pub fn parcel_of<K>(lines: &[CartLine<K>], discount: i64) -> Parcel {
    let weight = lines
        .iter()
        .filter(|l| l.requires_shipping)
        .map(|l| l.weight_grams.saturating_mul(l.quantity))
        .fold(0_i64, i64::saturating_add);
    let subtotal = lines
        .iter()
        .map(|l| l.unit_price.saturating_mul(l.quantity))
        .fold(0_i64, i64::saturating_add);
    Parcel {
        weight_grams: weight,
        subtotal: subtotal.saturating_sub(discount.clamp(0, subtotal.max(0))),
    }
}

/// Prices `lines` in `currency` with an order discount of `discount`, going
/// to `destination` (unknown yet for a cart without an address) by
/// `method` (if chosen), under `rules`.
pub fn price_checkout<K: Ord + Clone>(
    rules: &Rules,
    lines: &[CartLine<K>],
    discount: i64,
    currency: &str,
    destination: Option<&Destination>,
    method: Option<Uuid>,
) -> Result<Checkout<K>, OutOfRange> {
    let rates: HashMap<&str, u32> = lines
        .iter()
        .map(|l| {
            (
                l.tax_class.as_str(),
                rules.tax_bp(&l.tax_class, destination),
            )
        })
        .collect();
    let priced: Vec<Line<K>> = lines
        .iter()
        .map(|l| Line {
            key: l.key.clone(),
            unit_price: l.unit_price,
            quantity: l.quantity,
            tax_bp: rates.get(l.tax_class.as_str()).copied().unwrap_or(0),
        })
        .collect();
    let needs_shipping = rules.ships() && lines.iter().any(|l| l.requires_shipping);
    let (shipping, problem) = if !needs_shipping {
        (None, None)
    } else {
        match destination {
            // A cart without an address: nothing to quote yet.
            None => (None, method.map(|_| ShippingProblem::MethodIneligible)),
            Some(d) if !rules.covers(d) => (None, Some(ShippingProblem::NoShippingToDestination)),
            Some(d) => match method {
                None => (None, Some(ShippingProblem::Required)),
                Some(id) => {
                    let parcel = parcel_of(lines, discount);
                    match rules
                        .eligible(d, currency, parcel)
                        .into_iter()
                        .find(|q| q.method_id == id)
                    {
                        Some(q) => (Some(q), None),
                        None => (None, Some(ShippingProblem::MethodIneligible)),
                    }
                }
            },
        }
    };
    let charged = shipping.as_ref().map(|q| Shipping {
        amount: q.amount,
        tax_bp: q.tax_bp,
    });
    let totals = price(&priced, discount, charged, rules.mode)?;
    Ok(Checkout {
        totals,
        shipping,
        problem,
        mode: rules.mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pricing::shipping::WeightBand;
    use proptest::prelude::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn rules(mode: TaxMode) -> Rules {
        Rules {
            zones: vec![
                Zone {
                    id: id(1),
                    name: "EU".into(),
                    countries: vec!["FR".into(), "DE".into()],
                    postal_code_prefixes: vec![],
                },
                Zone {
                    id: id(2),
                    name: "Lyon".into(),
                    countries: vec!["FR".into()],
                    postal_code_prefixes: vec!["69".into()],
                },
            ],
            methods: vec![
                Method {
                    id: id(10),
                    zone_id: id(1),
                    name: "Standard".into(),
                    carrier: Some("La Poste".into()),
                    currency: "EUR".into(),
                    rate: Rate::Flat { amount: 490 },
                    free_over: Some(10_000),
                    min_days: Some(2),
                    max_days: Some(4),
                    tax_class: STANDARD_CLASS.into(),
                    is_active: true,
                },
                Method {
                    id: id(11),
                    zone_id: id(1),
                    name: "Heavy".into(),
                    carrier: None,
                    currency: "EUR".into(),
                    rate: Rate::Weight {
                        bands: vec![WeightBand {
                            up_to_grams: 2000,
                            amount: 900,
                        }],
                    },
                    free_over: None,
                    min_days: None,
                    max_days: None,
                    tax_class: STANDARD_CLASS.into(),
                    is_active: true,
                },
                Method {
                    id: id(12),
                    zone_id: id(2),
                    name: "Courier".into(),
                    carrier: None,
                    currency: "EUR".into(),
                    rate: Rate::Flat { amount: 300 },
                    free_over: None,
                    min_days: Some(1),
                    max_days: Some(1),
                    tax_class: STANDARD_CLASS.into(),
                    is_active: true,
                },
            ],
            rates: vec![
                TaxRate {
                    tax_class: STANDARD_CLASS.into(),
                    country: "FR".into(),
                    region: None,
                    rate_bp: 2000,
                },
                TaxRate {
                    tax_class: "reduced".into(),
                    country: "FR".into(),
                    region: None,
                    rate_bp: 550,
                },
                TaxRate {
                    tax_class: STANDARD_CLASS.into(),
                    country: "US".into(),
                    region: Some("NY".into()),
                    rate_bp: 888,
                },
            ],
            mode,
        }
    }

    fn dest(country: &str, postal_code: &str, region: Option<&str>) -> Destination {
        Destination {
            country: country.into(),
            postal_code: postal_code.into(),
            region: region.map(Into::into),
        }
    }

    fn line(key: u8, unit_price: i64, quantity: i64, grams: i64, class: &str) -> CartLine<u8> {
        CartLine {
            key,
            unit_price,
            quantity,
            weight_grams: grams,
            requires_shipping: true,
            tax_class: class.into(),
        }
    }

    #[test]
    fn rates_by_region_then_country_else_none() {
        let r = rules(TaxMode::Exclusive);
        assert_eq!(r.tax_bp("standard", Some(&dest("fr", "75001", None))), 2000);
        assert_eq!(r.tax_bp("reduced", Some(&dest("FR", "75001", None))), 550);
        assert_eq!(r.tax_bp("zero", Some(&dest("FR", "75001", None))), 0);
        assert_eq!(
            r.tax_bp("standard", Some(&dest("US", "10001", Some("ny")))),
            888
        );
        assert_eq!(
            r.tax_bp("standard", Some(&dest("US", "94105", Some("CA")))),
            0
        );
        assert_eq!(r.tax_bp("standard", None), 0);
    }

    #[test]
    fn eligible_methods_are_the_closest_zones_cheapest_first() {
        let r = rules(TaxMode::Exclusive);
        let parcel = Parcel {
            weight_grams: 1500,
            subtotal: 5000,
        };
        let paris: Vec<Uuid> = r
            .eligible(&dest("FR", "75001", None), "EUR", parcel)
            .iter()
            .map(|q| q.method_id)
            .collect();
        assert_eq!(paris, [id(10), id(11)]);
        let lyon: Vec<Uuid> = r
            .eligible(&dest("FR", "69001", None), "EUR", parcel)
            .iter()
            .map(|q| q.method_id)
            .collect();
        assert_eq!(lyon, [id(12)]);
        // Too heavy for the weight bands; the other currency has none.
        let heavy = Parcel {
            weight_grams: 2001,
            subtotal: 5000,
        };
        assert_eq!(
            r.eligible(&dest("DE", "10115", None), "EUR", heavy).len(),
            1
        );
        assert!(r
            .eligible(&dest("DE", "10115", None), "USD", parcel)
            .is_empty());
    }

    #[test]
    fn checkout_problems() {
        let r = rules(TaxMode::Exclusive);
        let lines = [line(1, 2000, 2, 500, "standard")];
        let paris = dest("FR", "75001", None);
        let c = price_checkout(&r, &lines, 0, "EUR", Some(&paris), None).expect("fits");
        assert_eq!(c.problem, Some(ShippingProblem::Required));
        let c = price_checkout(
            &r,
            &lines,
            0,
            "EUR",
            Some(&dest("JP", "100", None)),
            Some(id(10)),
        )
        .expect("fits");
        assert_eq!(c.problem, Some(ShippingProblem::NoShippingToDestination));
        let c = price_checkout(&r, &lines, 0, "EUR", Some(&paris), Some(id(12))).expect("fits");
        assert_eq!(c.problem, Some(ShippingProblem::MethodIneligible));
        let c = price_checkout(&r, &lines, 0, "EUR", Some(&paris), Some(id(10))).expect("fits");
        assert_eq!(c.problem, None);
        // 40.00 + 4.90 shipping, 20 % on both.
        assert_eq!(c.totals.shipping, 490);
        assert_eq!(c.totals.tax, 800 + 98);
        assert_eq!(c.totals.total, 4000 + 490 + 898);
        // Lines that skip shipping need no method.
        let digital = [CartLine {
            requires_shipping: false,
            ..lines[0].clone()
        }];
        let c = price_checkout(&r, &digital, 0, "EUR", Some(&paris), None).expect("fits");
        assert_eq!((c.problem, c.totals.shipping), (None, 0));
        // A shop without methods ships everything at no charge.
        let none = Rules::none(TaxMode::Exclusive);
        let c = price_checkout(&none, &lines, 0, "EUR", Some(&paris), None).expect("fits");
        assert_eq!((c.problem, c.totals.total), (None, 4000));
    }

    #[test]
    fn free_over_counts_the_subtotal_after_discount() {
        let r = rules(TaxMode::Inclusive);
        let lines = [line(1, 10_000, 1, 100, "standard")];
        let paris = dest("FR", "75001", None);
        let c = price_checkout(&r, &lines, 0, "EUR", Some(&paris), Some(id(10))).expect("fits");
        assert_eq!(c.totals.shipping, 0);
        let c = price_checkout(&r, &lines, 1, "EUR", Some(&paris), Some(id(10))).expect("fits");
        assert_eq!(c.totals.shipping, 490);
        // Inclusive: what is charged is the shelf price after discount.
        assert_eq!(c.totals.total, 10_000 - 1 + 490);
    }

    proptest! {
        /// Whatever the cart, destination and choice: the totals add up,
        /// a charged method is one of the eligible ones at its quoted
        /// price, and a problem means no shipping was charged.
        #[test]
        fn checkout_adds_up(
            raw in prop::collection::vec((0_u8..8, 0_i64..50_000, 1_i64..5, 0_i64..1500, any::<bool>(),
                prop::sample::select(vec!["standard", "reduced", "zero"])), 0..8),
            discount in 0_i64..20_000,
            where_to in prop::sample::select(vec![("FR", "75001"), ("FR", "69003"), ("DE", "1"), ("US", "10001"), ("JP", "1")]),
            method in prop::option::of(prop::sample::select(vec![10_u128, 11, 12, 99])),
            inclusive in any::<bool>(),
        ) {
            let mode = if inclusive { TaxMode::Inclusive } else { TaxMode::Exclusive };
            let r = rules(mode);
            let lines: Vec<CartLine<u8>> = raw.iter().map(|&(k, p, q, g, ships, class)| CartLine {
                key: k, unit_price: p, quantity: q, weight_grams: g, requires_shipping: ships, tax_class: class.into(),
            }).collect();
            let d = dest(where_to.0, where_to.1, Some("NY"));
            let c = price_checkout(&r, &lines, discount, "EUR", Some(&d), method.map(id)).expect("fits");
            let t = &c.totals;
            let charged_tax = if inclusive { 0 } else { t.tax };
            prop_assert_eq!(t.total, t.subtotal - t.discount + t.shipping + charged_tax);
            prop_assert_eq!(t.lines.iter().map(|l| l.tax).sum::<i64>() + t.shipping_tax, t.tax);
            match (&c.shipping, c.problem) {
                (Some(q), None) => {
                    let offered = r.eligible(&d, "EUR", parcel_of(&lines, discount));
                    prop_assert!(offered.contains(q));
                    prop_assert_eq!(t.shipping, q.amount);
                }
                (None, Some(_)) => prop_assert_eq!(t.shipping, 0),
                (None, None) => {
                    prop_assert_eq!(t.shipping, 0);
                    prop_assert!(!lines.iter().any(|l| l.requires_shipping));
                }
                (Some(_), Some(_)) => prop_assert!(false, "charged and refused"),
            }
            prop_assert!(t.total >= 0 && t.tax >= 0);
        }
    }
}

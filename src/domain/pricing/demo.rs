//! The demo shop's shipping and tax rules (for `seed-demo`): EU and US
//! zones with flat and weight rates, and tax rates for a handful of
//! countries, so a newcomer's first checkout shows shipping and tax.

use uuid::Uuid;

use super::config::{MethodDraft, TaxRateDraft, ZoneDraft};
use super::shipping::{Rate, WeightBand};

/// Fixed ids, so seeding again inserts nothing new.
const EU_ZONE: Uuid = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0e01);
const US_ZONE: Uuid = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0e02);

/// A demo zone and its methods, with their ids.
pub struct DemoZone {
    pub id: Uuid,
    pub zone: ZoneDraft,
    pub methods: Vec<(Uuid, MethodDraft)>,
}

fn method_id(n: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0f00 + n)
}

/// The EU zone (Standard, flat 4.90 free from 50.00; Express by weight)
/// and the US zone (USPS Ground in USD: the demo catalog is priced in EUR,
/// so it is listed but never offered to a demo cart).
pub fn demo_zones() -> Vec<DemoZone> {
    let eu_method =
        |name: &str, carrier: Option<&str>, rate: Rate, free_over, days: (i64, i64)| MethodDraft {
            zone_id: EU_ZONE,
            name: name.into(),
            carrier: carrier.map(Into::into),
            currency: "EUR".into(),
            rate,
            free_over,
            min_days: Some(days.0),
            max_days: Some(days.1),
            tax_class: None,
            is_active: true,
        };
    let band = |up_to_grams, amount| WeightBand {
        up_to_grams,
        amount,
    };
    vec![
        DemoZone {
            id: EU_ZONE,
            zone: ZoneDraft {
                name: "EU".into(),
                countries: ["FR", "DE", "ES", "IT", "NL", "BE"]
                    .map(Into::into)
                    .to_vec(),
                postal_code_prefixes: vec![],
            },
            methods: vec![
                (
                    method_id(1),
                    eu_method(
                        "Standard",
                        Some("La Poste"),
                        Rate::Flat { amount: 490 },
                        Some(5000),
                        (2, 4),
                    ),
                ),
                (
                    method_id(2),
                    eu_method(
                        "Express",
                        None,
                        Rate::Weight {
                            bands: vec![band(1000, 990), band(5000, 1490), band(20_000, 2490)],
                        },
                        None,
                        (1, 2),
                    ),
                ),
            ],
        },
        DemoZone {
            id: US_ZONE,
            zone: ZoneDraft {
                name: "US".into(),
                countries: vec!["US".into()],
                postal_code_prefixes: vec![],
            },
            methods: vec![(
                method_id(3),
                MethodDraft {
                    zone_id: US_ZONE,
                    name: "USPS Ground".into(),
                    carrier: Some("USPS".into()),
                    currency: "USD".into(),
                    rate: Rate::Flat { amount: 599 },
                    free_over: None,
                    min_days: Some(3),
                    max_days: Some(7),
                    tax_class: None,
                    is_active: true,
                },
            )],
        },
    ]
}

/// Standard and reduced rates for six EU countries, and two US states.
pub fn demo_rates() -> Vec<(Uuid, TaxRateDraft)> {
    let eu = [
        ("FR", 2000, 550),
        ("DE", 1900, 700),
        ("ES", 2100, 1000),
        ("IT", 2200, 1000),
        ("NL", 2100, 900),
        ("BE", 2100, 600),
    ];
    let mut out = Vec::new();
    let mut n = 0_u128;
    let mut push = |class: &str, country: &str, region: Option<&str>, rate_bp: i64| {
        n += 1;
        out.push((
            Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_1000 + n),
            TaxRateDraft {
                tax_class: class.into(),
                country: country.into(),
                region: region.map(Into::into),
                rate_bp,
            },
        ));
    };
    for (country, standard, reduced) in eu {
        push("standard", country, None, standard);
        push("reduced", country, None, reduced);
    }
    push("standard", "US", Some("NY"), 888);
    push("standard", "US", Some("CA"), 725);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_rule_is_valid_and_ids_are_unique() {
        let mut ids = Vec::new();
        for z in demo_zones() {
            z.zone.validate().expect("zone valid");
            ids.push(z.id);
            for (id, m) in z.methods {
                assert_eq!(m.zone_id, z.id);
                m.validate().expect("method valid");
                ids.push(id);
            }
        }
        for (id, r) in demo_rates() {
            r.validate().expect("rate valid");
            ids.push(id);
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}

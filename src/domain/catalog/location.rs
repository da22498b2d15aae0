//! Stock locations and per-location stock as admins write them.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::domain::pricing::config::{check_country, text};
use crate::domain::validation::ValidationErrors;

/// Most units one location can hold of one variant (the variant's own
/// stock bound).
pub const MAX_ON_HAND: i64 = 1_000_000_000;
/// Most levels one `PUT …/stock/` sets.
pub const MAX_LEVELS: usize = 100;
/// Priorities run from -1000 to 1000.
pub const MAX_PRIORITY: i64 = 1000;

/// A stock location as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationDraft {
    pub name: String,
    pub country: String,
    pub priority: i64,
    pub is_active: bool,
}

/// A checked location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFields {
    pub name: String,
    pub country: String,
    pub priority: i32,
    pub is_active: bool,
}

impl LocationDraft {
    /// Trimmed and upper-cased, or every problem by field.
    pub fn validate(self) -> Result<LocationFields, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = text(&mut errors, "name", &self.name, 200);
        let country = check_country(&mut errors, "country", &self.country);
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            errors.add(
                "priority",
                "out_of_range",
                format!("priority must be -{MAX_PRIORITY} to {MAX_PRIORITY}"),
            );
        }
        errors.into_result()?;
        Ok(LocationFields {
            name,
            country,
            priority: i32::try_from(self.priority).unwrap_or_default(),
            is_active: self.is_active,
        })
    }
}

/// One location's count of a variant, as an admin sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelDraft {
    pub location_id: Uuid,
    pub on_hand: i64,
}

/// A checked level: the count to set at a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelSet {
    pub location_id: Uuid,
    pub on_hand: i32,
}

/// Checks the levels of one `PUT …/stock/`: 1-100, each location once,
/// counts in range. Sorted by location id, the order they are locked in.
pub fn check_levels(levels: &[LevelDraft]) -> Result<Vec<LevelSet>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if levels.is_empty() {
        errors.add("levels", "empty", "at least one level is required");
    } else if levels.len() > MAX_LEVELS {
        errors.add("levels", "too_many", format!("at most {MAX_LEVELS} levels"));
    }
    let mut seen = BTreeSet::new();
    for (i, level) in levels.iter().enumerate() {
        if !seen.insert(level.location_id) {
            errors.add(
                &format!("levels.{i}.location_id"),
                "duplicate",
                "each location at most once",
            );
        }
        if !(0..=MAX_ON_HAND).contains(&level.on_hand) {
            errors.add(
                &format!("levels.{i}.on_hand"),
                "out_of_range",
                format!("on_hand must be 0 to {MAX_ON_HAND}"),
            );
        }
    }
    errors.into_result()?;
    let mut checked: Vec<LevelSet> = levels
        .iter()
        .map(|l| LevelSet {
            location_id: l.location_id,
            on_hand: i32::try_from(l.on_hand).unwrap_or_default(),
        })
        .collect();
    checked.sort_by_key(|l| l.location_id);
    Ok(checked)
}

/// Why a stock write was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockRefusal {
    /// `stock` was given on a product or variant but no location is
    /// active to hold it.
    NoActiveLocation,
    /// The count would fall below what reservations hold there.
    BelowHeld { location_id: Uuid, held: i32 },
    /// No location has this id.
    UnknownLocation(Uuid),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &ValidationErrors) -> Vec<String> {
        let mut f: Vec<String> = e.errors().iter().map(|e| e.field.clone()).collect();
        f.sort();
        f
    }

    #[test]
    fn a_location_is_named_in_a_country_with_a_bounded_priority() {
        let ok = LocationDraft {
            name: " EU warehouse ".into(),
            country: "de".into(),
            priority: 10,
            is_active: true,
        }
        .validate()
        .expect("valid");
        assert_eq!(
            (ok.name.as_str(), ok.country.as_str()),
            ("EU warehouse", "DE")
        );
        let bad = LocationDraft {
            name: " ".into(),
            country: "XX".into(),
            priority: 5000,
            is_active: true,
        }
        .validate()
        .expect_err("refused");
        assert_eq!(fields(&bad), ["country", "name", "priority"]);
    }

    #[test]
    fn levels_name_each_location_once_with_counts_in_range() {
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let set = check_levels(&[
            LevelDraft {
                location_id: a,
                on_hand: 3,
            },
            LevelDraft {
                location_id: b,
                on_hand: 0,
            },
        ])
        .expect("valid");
        assert_eq!(set[0].location_id, b);
        let bad = check_levels(&[
            LevelDraft {
                location_id: a,
                on_hand: -1,
            },
            LevelDraft {
                location_id: a,
                on_hand: MAX_ON_HAND + 1,
            },
        ])
        .expect_err("refused");
        assert_eq!(
            fields(&bad),
            [
                "levels.0.on_hand",
                "levels.1.location_id",
                "levels.1.on_hand"
            ]
        );
        assert!(check_levels(&[]).is_err());
    }
}

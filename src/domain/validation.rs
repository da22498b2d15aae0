//! Per-field validation errors, collected so that one response names every
//! problem in a request at once.

use serde::Serialize;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `email` or `items.0.quantity`.
    pub field: String,
    /// Stable machine-readable reason, e.g. `required`, `too_short`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

/// Every field problem found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection holding one error.
    pub fn single(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, code, message);
        errors
    }

    /// Records a problem with `field`.
    pub fn add(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        });
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    /// The same errors, with each field path starting with a `from` prefix
    /// renamed to its `to` (for a body that names a shared field another
    /// way).
    pub fn renamed(self, renames: &[(&str, &str)]) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|mut e| {
                    if let Some((from, to)) = renames.iter().find(|(f, _)| e.field.starts_with(f)) {
                        e.field = format!("{to}{}", &e.field[from.len()..]);
                    }
                    e
                })
                .collect(),
        )
    }

    /// Records every error of `other` too (a part checked on its own).
    pub fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the collection as an error.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The recorded problems.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<&str> = self.0.iter().map(|e| e.field.as_str()).collect();
        write!(f, "invalid fields: {}", fields.join(", "))
    }
}

impl std::error::Error for ValidationErrors {}

/// The years a time the API accepts may fall in: every database and client
/// holds them, and PostgreSQL's `timestamptz` cannot hold all of chrono's.
pub const TIME_YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// `time` moved into [`TIME_YEARS`]: for a filter, a bound beyond the years
/// anything can be stored in selects the same as the nearest one that is.
pub fn clamp_time(time: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    let bound = |year, month, day, h, m, s| {
        chrono::Utc
            .with_ymd_and_hms(year, month, day, h, m, s)
            .single()
            .unwrap_or(time)
    };
    time.clamp(
        bound(*TIME_YEARS.start(), 1, 1, 0, 0, 0),
        bound(*TIME_YEARS.end(), 12, 31, 23, 59, 59),
    )
}

/// Records an error on `field` unless `time` falls within [`TIME_YEARS`].
pub fn check_time(errors: &mut ValidationErrors, field: &str, time: chrono::DateTime<chrono::Utc>) {
    use chrono::Datelike as _;
    if !TIME_YEARS.contains(&time.year()) {
        errors.add(
            field,
            "out_of_range",
            format!(
                "{field} must fall in the years {} to {}",
                TIME_YEARS.start(),
                TIME_YEARS.end()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_and_reports_them_together() {
        let mut errors = ValidationErrors::new();
        assert_eq!(errors.check::<u8>(Ok(3)), Some(3));
        errors.add("email", "invalid", "not an email");
        let failed = errors.check::<u8>(Err(FieldError {
            field: "password".into(),
            code: "too_short",
            message: "short".into(),
        }));
        assert_eq!(failed, None);
        let err = errors.into_result().expect_err("two errors");
        assert_eq!(err.errors().len(), 2);
        assert_eq!(err.to_string(), "invalid fields: email, password");
    }

    #[test]
    fn times_outside_the_supported_years_are_refused() {
        use chrono::TimeZone as _;
        let mut errors = ValidationErrors::new();
        for (year, ok) in [
            (1969, false),
            (1970, true),
            (2026, true),
            (9999, true),
            (-5000, false),
        ] {
            let mut one = ValidationErrors::new();
            let t = chrono::Utc
                .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
                .single()
                .expect("a time");
            check_time(&mut one, "at", t);
            assert_eq!(one.is_empty(), ok, "{year}");
            check_time(&mut errors, "at", t);
        }
        assert_eq!(errors.errors().len(), 2);
        assert_eq!(errors.errors()[0].code, "out_of_range");
        let early = chrono::Utc
            .with_ymd_and_hms(1, 1, 1, 0, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(chrono::Datelike::year(&clamp_time(early)), 1970);
        let now = chrono::Utc::now();
        assert_eq!(clamp_time(now), now);
    }

    #[test]
    fn empty_is_ok() {
        assert!(ValidationErrors::new().into_result().is_ok());
    }
}

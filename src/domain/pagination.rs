//! DRF-compatible page numbers: `page` (from 1) and `page_size` (capped), and
//! the `{count, next, previous, results}` envelope.

use serde::Serialize;

use super::validation::ValidationErrors;

/// Page size used when the client names none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Rows per page, 1..=MAX_PAGE_SIZE.
    pub page_size: u32,
}

impl PageRequest {
    /// Validates raw query values. Absent values take defaults; anything
    /// present must be a positive integer. A page size above the cap is
    /// clamped, as DRF's `max_page_size` does.
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let page = match page {
            None => 1,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    errors.add("page", "invalid", "page must be a whole number from 1");
                    1
                }
            },
        };
        let page_size = match page_size {
            None => DEFAULT_PAGE_SIZE,
            // Any whole number from 1, however long, is accepted and capped:
            // the documented range has no upper bound.
            Some(raw) => match whole_number(raw.trim()) {
                Some(n) if n >= 1 => n.min(u64::from(MAX_PAGE_SIZE)) as u32,
                _ => {
                    errors.add(
                        "page_size",
                        "invalid",
                        format!("page_size must be a whole number from 1 (at most {MAX_PAGE_SIZE} are returned)"),
                    );
                    DEFAULT_PAGE_SIZE
                }
            },
        };
        errors.into_result()?;
        Ok(Self { page, page_size })
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }

    /// SQL `OFFSET`.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.page_size)
    }

    /// Whether a page follows this one, given the total row count.
    pub fn has_next(&self, count: i64) -> bool {
        self.offset() + self.limit() < count
    }

    /// Whether this page is past the last one. Page 1 always exists, even
    /// when empty, as in DRF.
    pub fn is_past_end(&self, count: i64) -> bool {
        self.page > 1 && self.offset() >= count
    }
}

/// The value of a string of ASCII digits, saturating at `u64::MAX`.
fn whole_number(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.parse::<u64>().unwrap_or(u64::MAX))
}

/// One page of results in DRF's envelope.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Total rows across all pages.
    pub count: i64,
    /// Absolute URL of the next page, if any.
    pub next: Option<String>,
    /// Absolute URL of the previous page, if any.
    pub previous: Option<String>,
    /// The rows of this page.
    pub results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent() {
        let p = PageRequest::parse(None, None).expect("defaults");
        assert_eq!((p.page, p.page_size), (1, DEFAULT_PAGE_SIZE));
        assert_eq!(p.offset(), 0);
    }

    #[test]
    fn huge_page_size_is_capped() {
        let p = PageRequest::parse(Some("2"), Some("100000000000")).expect("clamped");
        assert_eq!(p.page_size, MAX_PAGE_SIZE);
        assert_eq!(p.offset(), i64::from(MAX_PAGE_SIZE));
        let p = PageRequest::parse(None, Some("1000000000000000000000000000000")).expect("clamped");
        assert_eq!(p.page_size, MAX_PAGE_SIZE);
        assert!(PageRequest::parse(None, Some("-1")).is_err());
        assert!(PageRequest::parse(None, Some("0")).is_err());
    }

    #[test]
    fn zero_negative_and_words_are_refused_per_field() {
        for bad in ["0", "-1", "two", "", "1.5"] {
            let err = PageRequest::parse(Some(bad), Some(bad)).expect_err(bad);
            let fields: Vec<_> = err.errors().iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["page", "page_size"], "input {bad:?}");
        }
    }

    #[test]
    fn next_and_past_end_follow_the_count() {
        let p = PageRequest::parse(Some("2"), Some("10")).expect("valid");
        assert!(p.has_next(21));
        assert!(!p.has_next(20));
        assert!(!p.is_past_end(11));
        assert!(p.is_past_end(10));
        let first = PageRequest::parse(None, None).expect("valid");
        assert!(!first.is_past_end(0));
    }
}

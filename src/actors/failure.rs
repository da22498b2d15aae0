//! How a domain's error enum classifies the failures below its rules, in
//! one place: a database outage (or a lock conflict that outlived its
//! retries) becomes the domain's `Unavailable` variant, anything else its
//! `Unexpected` one. The edge maps the variants and never looks inside an
//! error, so an outage stays an outage wherever it travels.

/// Implements, for a domain error enum with `Unavailable(anyhow::Error)`
/// and `Unexpected(anyhow::Error)` variants: `From<sqlx::Error>` (with
/// `$what` as context), `From<anyhow::Error>` (classified), and
/// `AsSqlxError` (so `retry_on_contention` still sees the cause).
macro_rules! classified_failures {
    ($error:ident, $what:literal) => {
        impl From<sqlx::Error> for $error {
            fn from(e: sqlx::Error) -> Self {
                anyhow::Error::new(e).context($what).into()
            }
        }

        impl From<anyhow::Error> for $error {
            fn from(e: anyhow::Error) -> Self {
                if $crate::store::database::is_transient(&e) {
                    $error::Unavailable(e)
                } else {
                    $error::Unexpected(e)
                }
            }
        }

        impl $crate::store::database::AsSqlxError for $error {
            fn as_sqlx(&self) -> Option<&sqlx::Error> {
                match self {
                    $error::Unavailable(e) | $error::Unexpected(e) => {
                        $crate::store::database::AsSqlxError::as_sqlx(e)
                    }
                    _ => None,
                }
            }
        }

        impl $error {
            /// Whether the domain's database cannot answer now (retry).
            pub fn is_unavailable(&self) -> bool {
                matches!(self, $error::Unavailable(_))
            }
        }
    };
}

pub(crate) use classified_failures;

//! Everything the auth domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
use crate::domain::validation::ValidationErrors;

/// Errors of the auth domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input broke a field rule.
    #[error(transparent)]
    Validation(ValidationErrors),
    /// Registration with an email already in use.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Login failed; unknown email, wrong password and inactive account look
    /// the same on purpose.
    #[error("no active account found with the given credentials")]
    InvalidCredentials,
    /// Password change with a wrong current password.
    #[error("the current password is incorrect")]
    WrongCurrentPassword,
    /// A token that is unknown, expired, revoked, or of a stale version.
    #[error("token is invalid or expired")]
    InvalidToken,
    /// A refresh token presented a second time; its family is now revoked.
    #[error("refresh token was already used; the session has been revoked")]
    RefreshReused,
    /// No user with that id.
    #[error("user not found")]
    UserNotFound,
    /// An admin tried to demote or deactivate their own account.
    #[error("admins cannot demote or deactivate their own account")]
    SelfLockout,
    /// The change would leave the shop without an active admin.
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    /// No such API key.
    #[error("API key not found")]
    ApiKeyNotFound,
    /// No such address in the caller's book.
    #[error("address not found")]
    AddressNotFound,
    /// The caller's book is full.
    #[error("an address book holds at most 20 addresses; delete one first")]
    AddressLimit,
    /// A password-reset token that is unknown, used, expired or forged.
    #[error("the password reset token is invalid, expired or already used")]
    InvalidResetToken,
    /// A verification token that is unknown, used, expired or forged, or
    /// was sent to an address the account no longer has.
    #[error("the verification token is invalid, expired or already used")]
    InvalidVerificationToken,
    /// A verification mail asked for by an account already verified.
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The auth database cannot answer now (down, pool exhausted, a lock
    /// conflict that outlived its retries): retry later.
    #[error("the auth database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(AuthError, "auth database");

//! Messages the auth actor answers. Inputs arrive validated and normalised
//! by the edge; principals arrive already authenticated.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::AuthError;
use crate::domain::auth::{Principal, Role};
use crate::domain::pagination::PageRequest;

/// A user as clients see it (never the hash or token version).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    /// Whether the owner has proved the email is theirs (the link of the
    /// verification mail). Accounts older than verification count as
    /// verified.
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An access and refresh token pair, named as simplejwt names them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`.
    pub access: String,
    /// A single-use token for `POST /auth/refresh/`.
    pub refresh: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until `access` expires.
    pub expires_in: i64,
}

/// Create a customer account.
#[derive(Debug, Message)]
#[rtype(result = "Result<UserView, AuthError>")]
pub struct Register {
    /// Normalised email.
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Exchange credentials for a token pair.
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenPair, AuthError>")]
pub struct Login {
    /// Normalised email.
    pub email: String,
    pub password: String,
}

/// Rotate a refresh token into a new pair.
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenPair, AuthError>")]
pub struct Refresh {
    pub refresh: String,
}

/// End the session (token family) of a refresh token.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct Logout {
    pub refresh: String,
}

/// Revoke every token the principal holds.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct LogoutAll {
    pub principal: Principal,
}

/// Change the principal's password, revoking every token, and issue a new pair.
#[derive(Debug, Message)]
#[rtype(result = "Result<TokenPair, AuthError>")]
pub struct ChangePassword {
    pub principal: Principal,
    pub current_password: String,
    pub new_password: String,
}

/// The principal's own account.
#[derive(Debug, Message)]
#[rtype(result = "Result<UserView, AuthError>")]
pub struct GetMe {
    pub principal: Principal,
}

/// Check a verified access token's subject against the database: the user
/// exists, is active, and the token's version is current.
#[derive(Debug, Message)]
#[rtype(result = "Result<Principal, AuthError>")]
pub struct ResolvePrincipal {
    pub user_id: Uuid,
    pub token_version: i32,
}

/// Admin: one page of users.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<UserView>, i64), AuthError>")]
pub struct ListUsers {
    pub page: PageRequest,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub email_contains: Option<String>,
}

/// Admin: change a user's role or activity.
#[derive(Debug, Message)]
#[rtype(result = "Result<UserView, AuthError>")]
pub struct UpdateUser {
    pub by: Principal,
    pub user_id: Uuid,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// An address of a customer's book, as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub id: Uuid,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub phone: String,
    pub is_default_shipping: bool,
    pub is_default_billing: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The user's addresses, oldest first (at most
/// [`crate::domain::auth::address_book::MAX_ADDRESSES`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<AddressView>, AuthError>")]
pub struct ListAddresses {
    pub user_id: Uuid,
}

/// One of the user's addresses; another user's is not found. Orders and
/// checkout snapshot it through this message.
#[derive(Debug, Message)]
#[rtype(result = "Result<AddressView, AuthError>")]
pub struct GetAddress {
    pub user_id: Uuid,
    pub id: Uuid,
}

/// Add an address to the user's book.
#[derive(Debug, Message)]
#[rtype(result = "Result<AddressView, AuthError>")]
pub struct CreateAddress {
    pub user_id: Uuid,
    pub draft: crate::domain::auth::address_book::AddressDraft,
}

/// Change one of the user's addresses.
#[derive(Debug, Message)]
#[rtype(result = "Result<AddressView, AuthError>")]
pub struct UpdateAddress {
    pub user_id: Uuid,
    pub id: Uuid,
    pub patch: crate::domain::auth::address_book::AddressPatch,
}

/// Remove one of the user's addresses (a placed order keeps its copy).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct DeleteAddress {
    pub user_id: Uuid,
    pub id: Uuid,
}

/// Mail a password-reset link to `email` if it names an active account.
/// Answers the same, in about the same time, whether or not it does.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct RequestPasswordReset {
    /// Normalised email.
    pub email: String,
}

/// Set a new password with a mailed reset token, revoking every session.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct ConfirmPasswordReset {
    pub token: String,
    /// Already checked against the password policy.
    pub new_password: String,
}

/// Mark the email verified with a mailed verification token.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct VerifyEmail {
    pub token: String,
}

/// Mail the principal a new verification link.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AuthError>")]
pub struct ResendVerification {
    pub principal: Principal,
}

/// How to reach a user, for other domains (mail, the checkout gate).
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub is_active: bool,
}

/// A user's contact details; `UserNotFound` when there is no such user.
#[derive(Debug, Message)]
#[rtype(result = "Result<Contact, AuthError>")]
pub struct GetContact {
    pub user_id: Uuid,
}

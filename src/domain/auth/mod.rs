//! The auth domain's rules: who a user is, what a valid email and password
//! are, and how access and refresh tokens are made and checked.

pub mod address_book;
pub mod api_keys;
pub mod email;
pub mod password;
pub mod principal;
pub mod tokens;

pub use email::normalize_email;
pub use password::{check_password_policy, PasswordHasher};
pub use principal::{Principal, Role};
pub use tokens::{AccessClaims, RefreshToken, TokenError, TokenKeys};

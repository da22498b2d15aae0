//! SQL of the auth database: users and refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::events::{CustomerData, Event, EventType};

/// A row of `users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub email_verified: bool,
}

/// What the per-request principal check needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserAccess {
    pub role: String,
    pub is_active: bool,
    pub token_version: i32,
}

/// A refresh token claimed for rotation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedRefresh {
    pub user_id: Uuid,
    pub family_id: Uuid,
}

/// A refresh token's state, read when a claim fails.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshState {
    pub family_id: Uuid,
    pub used_at: Option<DateTime<Utc>>,
}

/// Filters of the admin user listing.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<String>,
    pub is_active: Option<bool>,
    /// Case-insensitive substring of the email.
    pub email_contains: Option<String>,
}

const USER_COLUMNS: &str = "id, email, password_hash, name, role, is_active, token_version, \
     created_at, updated_at, email_verified";

/// The unique constraint that guards emails.
pub const USERS_EMAIL_KEY: &str = "users_email_key";

/// Inserts a user and appends its `customer.created` event in the same
/// transaction; a duplicate email fails on [`USERS_EMAIL_KEY`] and appends
/// nothing.
pub async fn insert_user(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
    name: &str,
    role: &str,
) -> Result<UserRow, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, email, password_hash, name, role, email_verified) \
         VALUES ($1, $2, $3, $4, $5, $5 = 'admin') RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .bind(name)
    .bind(role)
    .fetch_one(&mut *tx)
    .await?;
    let data = CustomerData::from_name(row.id, &row.email, &row.name, row.created_at);
    let event = Event::new(EventType::CustomerCreated, row.id, &data);
    crate::store::events::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(row)
}

/// A user by normalised email.
pub async fn find_user_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await
}

/// A user by id.
pub async fn find_user(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Role, activity and token version of a user, for the per-request check.
pub async fn user_access(pool: &PgPool, id: Uuid) -> Result<Option<UserAccess>, sqlx::Error> {
    sqlx::query_as("SELECT role, is_active, token_version FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One page of users, oldest first, and the total matching the filter.
pub async fn list_users(
    pool: &PgPool,
    filter: &UserFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
    let pattern = filter.email_contains.as_ref().map(|s| {
        format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    const WHERE: &str = "WHERE ($1::text IS NULL OR role = $1) \
                         AND ($2::boolean IS NULL OR is_active = $2) \
                         AND ($3::text IS NULL OR email LIKE $3)";
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users {WHERE}"))
        .bind(&filter.role)
        .bind(filter.is_active)
        .bind(&pattern)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users {WHERE} ORDER BY created_at, id LIMIT $4 OFFSET $5"
    ))
    .bind(&filter.role)
    .bind(filter.is_active)
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, count))
}

/// Changes role and/or activity. Deactivating bumps the token version so
/// that access tokens die with the account. `None` when no such user.
pub async fn update_user(
    conn: &mut PgConnection,
    id: Uuid,
    role: Option<&str>,
    is_active: Option<bool>,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), \
         token_version = token_version + CASE WHEN $3 = false AND is_active THEN 1 ELSE 0 END, \
         updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(role)
    .bind(is_active)
    .fetch_optional(conn)
    .await
}

/// Locks every active admin's row, in id order.
pub async fn lock_active_admins(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM users WHERE role = 'admin' AND is_active ORDER BY id FOR UPDATE")
        .execute(conn)
        .await?;
    Ok(())
}

/// How many active admins there are.
pub async fn count_active_admins(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")
        .fetch_one(conn)
        .await
}

/// Sets a new password hash and bumps the token version.
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now() \
         WHERE id = $1 RETURNING token_version",
    )
    .bind(id)
    .bind(password_hash)
    .fetch_one(conn)
    .await
}

/// Bumps the token version, revoking every access token of the user.
pub async fn bump_token_version(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new refresh token.
pub async fn insert_refresh_token(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(family_id)
    .bind(digest)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a live refresh token used, in one guarded write, so two concurrent
/// refreshes with one token cannot both succeed. `None` when the token is
/// unknown, used, revoked or expired.
pub async fn claim_refresh_token(
    conn: &mut PgConnection,
    digest: &[u8],
) -> Result<Option<ClaimedRefresh>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE refresh_tokens SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
         RETURNING user_id, family_id",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await
}

/// The state of a refresh token, whatever it is.
pub async fn refresh_token_state(
    pool: &PgPool,
    digest: &[u8],
) -> Result<Option<RefreshState>, sqlx::Error> {
    sqlx::query_as("SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(digest)
        .fetch_optional(pool)
        .await
}

/// Revokes every token of a family (one login session).
pub async fn revoke_family(pool: &PgPool, family_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every refresh token a user holds.
pub async fn revoke_user_refresh_tokens(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts customers in one statement, all with one password hash, skipping
/// ids or emails that exist; returns how many were inserted.
pub async fn insert_customers_bulk(
    pool: &PgPool,
    customers: &[(Uuid, String, String)],
    password_hash: &str,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = customers.iter().map(|c| c.0).collect();
    let emails: Vec<&str> = customers.iter().map(|c| c.1.as_str()).collect();
    let names: Vec<&str> = customers.iter().map(|c| c.2.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO users (id, email, password_hash, name, role) \
         SELECT id, email, $4, name, 'customer' FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, email, name) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&names)
    .bind(password_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// What a single-use token sent by mail is for (`email_tokens.purpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

/// A mailed token's owner and the address it was sent to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailTokenOwner {
    pub user_id: Uuid,
    pub email: String,
}

/// Stores a mailed token's digest, after voiding the user's earlier
/// unused tokens of the same purpose (only the latest mail works) and
/// deleting their long-expired ones.
pub async fn insert_email_token(
    conn: &mut PgConnection,
    digest: &[u8],
    user_id: Uuid,
    purpose: TokenPurpose,
    email: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM email_tokens WHERE user_id = $1 AND expires_at < now() - interval '1 day'",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    void_email_tokens(&mut *conn, user_id, purpose).await?;
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The owner of a live (unused, unexpired) token, without using it.
pub async fn peek_email_token(
    conn: &mut PgConnection,
    digest: &[u8],
    purpose: TokenPurpose,
) -> Result<Option<EmailTokenOwner>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, email FROM email_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(digest)
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// Uses a live token, in one guarded write: two uses racing cannot both
/// succeed. `None` when the token is unknown, used or expired.
pub async fn use_email_token(
    conn: &mut PgConnection,
    digest: &[u8],
    purpose: TokenPurpose,
) -> Result<Option<EmailTokenOwner>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE email_tokens SET used_at = now() \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() \
         RETURNING user_id, email",
    )
    .bind(digest)
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// Voids every unused token of `purpose` the user holds.
pub async fn void_email_tokens(
    conn: &mut PgConnection,
    user_id: Uuid,
    purpose: TokenPurpose,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email_tokens SET used_at = now() \
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the user's email verified if it is still `email` and was not
/// verified yet; the user after the change, `None` when nothing changed.
pub async fn set_email_verified(
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE users SET email_verified = true, updated_at = now() \
         WHERE id = $1 AND email = $2 AND NOT email_verified RETURNING {USER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(email)
    .fetch_optional(conn)
    .await
}

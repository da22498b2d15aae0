//! SQL of the auth database: users and refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

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

const USER_COLUMNS: &str =
    "id, email, password_hash, name, role, is_active, token_version, created_at, updated_at";

/// The unique constraint that guards emails.
pub const USERS_EMAIL_KEY: &str = "users_email_key";

/// Inserts a user; a duplicate email fails on [`USERS_EMAIL_KEY`].
pub async fn insert_user(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
    name: &str,
    role: &str,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO users (id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .bind(name)
    .bind(role)
    .fetch_one(pool)
    .await
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

//! Operator commands that run without the HTTP edge.

use anyhow::Context as _;

use crate::config::{Domain, Settings};
use crate::domain::auth::{check_password_policy, normalize_email, PasswordHasher, Role};
use crate::startup::migrate;
use crate::store;

/// Creates an admin account (migrating first). The only way to make the
/// first admin: registration never does.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<uuid::Uuid> {
    let email = normalize_email(email).map_err(|e| anyhow::anyhow!("email: {}", e.message))?;
    check_password_policy("password", password)
        .map_err(|e| anyhow::anyhow!("password: {}", e.message))?;
    migrate(settings).await?;
    let pool = store::database::lazy_pool(&settings.database, Domain::Auth)?;
    let hash = PasswordHasher::new()?.hash(password)?;
    let result =
        store::auth::insert_user(&pool, &email, &hash, name.trim(), Role::Admin.as_str()).await;
    pool.close().await;
    match result {
        Ok(user) => Ok(user.id),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(store::auth::USERS_EMAIL_KEY) => {
            anyhow::bail!(
                "an account with email {email} already exists; an admin can promote it with PATCH /api/v1/auth/users/{{id}}/"
            )
        }
        Err(e) => Err(e).context("creating the admin"),
    }
}

//! API keys for integrations: admins create (the secret shown once),
//! list and revoke them; the edge resolves a presented key to what it may
//! do. The messages and the work behind them.

use actix::Message;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::Serialize;
use uuid::Uuid;

use super::error::AuthError;
use super::handlers::AuthService;
use crate::domain::auth::api_keys::{digest, secret_from, Scope, Scopes};
use crate::domain::auth::Principal;
use crate::store::api_keys::{self as store, ApiKeyRow, NewApiKey};

/// A key as admins see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The secret's first characters, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Within a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(r: ApiKeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scopes: r.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// A key just made: the only answer that carries its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// `emp_sk_…`: send it as `Authorization: Bearer <key>`. Shown once.
    pub key: String,
}

/// Make a key (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<CreatedApiKey, AuthError>")]
pub struct CreateApiKey {
    pub by: Principal,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every key, oldest first (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ApiKeyView>, AuthError>")]
pub struct ListApiKeys;

/// One key (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<ApiKeyView, AuthError>")]
pub struct GetApiKey(pub Uuid);

/// Revoke a key (admins): refused on every instance from the next request.
#[derive(Debug, Message)]
#[rtype(result = "Result<ApiKeyView, AuthError>")]
pub struct RevokeApiKey(pub Uuid);

/// What a presented key may do: its id and scopes, if it is live.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<KeyGrant>, AuthError>")]
pub struct ResolveApiKey {
    /// The digest of the presented secret.
    pub digest: Vec<u8>,
}

/// A live key's identity and scopes, as the edge caches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    pub id: Uuid,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
}

impl AuthService {
    pub async fn create_api_key(&self, msg: CreateApiKey) -> Result<CreatedApiKey, AuthError> {
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let secret = secret_from(&random);
        let prefix: String = secret.chars().take(12).collect();
        let scopes: Vec<String> = Scopes::of(&msg.scopes)
            .list()
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let row = store::insert(
            &self.pool,
            &NewApiKey {
                id: Uuid::new_v4(),
                name: &msg.name,
                prefix: &prefix,
                digest: &digest(&secret),
                scopes: &scopes,
                expires_at: msg.expires_at,
                created_by: msg.by.user_id,
            },
        )
        .await?;
        Ok(CreatedApiKey {
            view: row.into(),
            key: secret,
        })
    }

    pub async fn list_api_keys(&self, _: ListApiKeys) -> Result<Vec<ApiKeyView>, AuthError> {
        Ok(store::list(&self.pool)
            .await?
            .into_iter()
            .map(ApiKeyView::from)
            .collect())
    }

    pub async fn get_api_key(&self, msg: GetApiKey) -> Result<ApiKeyView, AuthError> {
        store::get(&self.pool, msg.0)
            .await?
            .map(ApiKeyView::from)
            .ok_or(AuthError::ApiKeyNotFound)
    }

    pub async fn revoke_api_key(&self, msg: RevokeApiKey) -> Result<ApiKeyView, AuthError> {
        let row = store::revoke(&self.pool, msg.0)
            .await?
            .ok_or(AuthError::ApiKeyNotFound)?;
        // Every instance forgets the keys it resolved before this answers.
        self.view().invalidate().await;
        Ok(row.into())
    }

    pub async fn resolve_api_key(&self, msg: ResolveApiKey) -> Result<Option<KeyGrant>, AuthError> {
        Ok(store::use_key(&self.pool, &msg.digest)
            .await?
            .map(|row| KeyGrant {
                id: row.id,
                scopes: Scopes::of(
                    &row.scopes
                        .iter()
                        .filter_map(|s| Scope::parse(s))
                        .collect::<Vec<_>>(),
                ),
                expires_at: row.expires_at,
            }))
    }
}

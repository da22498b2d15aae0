//! The work behind each auth message. `AuthService` is cheap to clone into
//! each handler's future, so the actor serves many requests at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::error::AuthError;
use super::messages::*;
use crate::actors::read_view::AuthView;
use crate::domain::auth::{PasswordHasher, Principal, RefreshToken, Role, TokenKeys};
use crate::store::auth::{self as store, UserFilter, UserRow};
use crate::store::database::OnConstraint as _;

/// The auth domain's state, shared by every in-flight handler.
#[derive(Clone)]
pub struct AuthService {
    pub(super) pool: PgPool,
    keys: Arc<TokenKeys>,
    hasher: Arc<PasswordHasher>,
    /// Bounds concurrent argon2 runs so a login burst queues instead of
    /// taking every blocking thread and gigabytes of memory.
    hashing: Arc<Semaphore>,
    /// How long recent hashes took (microseconds, smoothed), so that a
    /// registration for a taken email can take as long without hashing.
    hash_micros: Arc<AtomicU64>,
    refresh_ttl_secs: i64,
    /// Principals and profiles the edge reads without a hop; every change
    /// of who a user is clears it on every instance before answering.
    view: AuthView,
    /// Where mails with tokens go (reset, verification); `None` sends none.
    pub(super) mail: Option<super::mail::AuthMail>,
}

/// Starting guess of a hash's duration, until one has been measured.
const INITIAL_HASH_MICROS: u64 = 50_000;

impl AuthService {
    /// Builds the service around the auth pool.
    pub fn new(
        pool: PgPool,
        keys: Arc<TokenKeys>,
        hasher: Arc<PasswordHasher>,
        max_concurrent_hashes: usize,
        refresh_ttl_secs: i64,
        view: AuthView,
    ) -> Self {
        Self {
            pool,
            keys,
            hasher,
            hashing: Arc::new(Semaphore::new(max_concurrent_hashes.max(1))),
            hash_micros: Arc::new(AtomicU64::new(INITIAL_HASH_MICROS)),
            refresh_ttl_secs,
            view,
            mail: None,
        }
    }

    /// The service, sending its token mails through `mail`.
    pub fn with_mail(mut self, mail: super::mail::AuthMail) -> Self {
        self.mail = Some(mail);
        self
    }

    /// The read view, for starting its channel.
    pub fn view(&self) -> &AuthView {
        &self.view
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) async fn hash_password(&self, password: String) -> Result<String, AuthError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .context("hashing semaphore closed")?;
        let hasher = Arc::clone(&self.hasher);
        let started = Instant::now();
        let hash = tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .context("hashing task failed")??;
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // An exponential moving average, weight 1/8 for the newest sample.
        let _ = self
            .hash_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(avg - avg / 8 + took / 8)
            });
        Ok(hash)
    }

    /// Verifies against `phc`, or against the decoy when there is no user.
    async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, AuthError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .context("hashing semaphore closed")?;
        let hasher = Arc::clone(&self.hasher);
        let ok = tokio::task::spawn_blocking(move || match phc {
            Some(phc) => hasher.verify(&password, &phc),
            None => hasher.verify_decoy(&password),
        })
        .await
        .context("verification task failed")?;
        Ok(ok)
    }

    /// Issues an access token and a refresh token in `family_id`.
    async fn issue_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        user_id: Uuid,
        role: Role,
        token_version: i32,
        family_id: Uuid,
    ) -> Result<TokenPair, AuthError> {
        let now = Utc::now();
        let access = self
            .keys
            .issue_access(user_id, role, token_version, now.timestamp())
            .context("signing an access token")?;
        let refresh = RefreshToken::generate();
        let expires_at = now + chrono::Duration::seconds(self.refresh_ttl_secs);
        store::insert_refresh_token(conn, user_id, family_id, &refresh.digest, expires_at).await?;
        Ok(TokenPair {
            access,
            refresh: refresh.token,
            token_type: "Bearer",
            expires_in: self.keys.access_ttl_secs(),
        })
    }

    pub async fn register(&self, msg: Register) -> Result<UserView, AuthError> {
        // A taken email costs no hash (a flood of them must not starve
        // logins of CPU), but takes as long as one, idly, so the answer's
        // timing says nothing the answer does not.
        if store::find_user_by_email(&self.pool, &msg.email)
            .await?
            .is_some()
        {
            let typical = self.hash_micros.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_micros(typical)).await;
            return Err(AuthError::EmailTaken);
        }
        let hash = self.hash_password(msg.password).await?;
        let row = store::insert_user(
            &self.pool,
            &msg.email,
            &hash,
            &msg.name,
            Role::Customer.as_str(),
        )
        .await
        .on_constraint(store::USERS_EMAIL_KEY, || AuthError::EmailTaken)?;
        self.mail_welcome(&row).await;
        user_view(row)
    }

    pub async fn login(&self, msg: Login) -> Result<TokenPair, AuthError> {
        let user = store::find_user_by_email(&self.pool, &msg.email).await?;
        let matches = self
            .verify_password(msg.password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let user = match user {
            Some(user) if matches && user.is_active => user,
            _ => return Err(AuthError::InvalidCredentials),
        };
        let role = parse_role(&user.role)?;
        let mut conn = self.pool.acquire().await?;
        self.issue_pair(&mut conn, user.id, role, user.token_version, Uuid::new_v4())
            .await
    }

    pub async fn refresh(&self, msg: Refresh) -> Result<TokenPair, AuthError> {
        let digest = RefreshToken::digest(&msg.refresh);
        let mut tx = self.pool.begin().await?;
        let Some(claimed) = store::claim_refresh_token(&mut tx, &digest).await? else {
            tx.rollback().await?;
            return Err(self.explain_failed_refresh(&digest).await?);
        };
        let user = store::find_user(&mut tx, claimed.user_id).await?;
        let Some(user) = user.filter(|u| u.is_active) else {
            return Err(AuthError::InvalidToken);
        };
        let role = parse_role(&user.role)?;
        let pair = self
            .issue_pair(
                &mut tx,
                user.id,
                role,
                user.token_version,
                claimed.family_id,
            )
            .await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// A refresh token that could not be claimed: if it was used before, this
    /// is reuse (a stolen token, or a replay), and the whole family goes.
    async fn explain_failed_refresh(&self, digest: &[u8]) -> Result<AuthError, AuthError> {
        match store::refresh_token_state(&self.pool, digest).await? {
            Some(state) if state.used_at.is_some() => {
                let revoked = store::revoke_family(&self.pool, state.family_id).await?;
                tracing::warn!(family = %state.family_id, revoked, "refresh token reuse detected; family revoked");
                Ok(AuthError::RefreshReused)
            }
            _ => Ok(AuthError::InvalidToken),
        }
    }

    pub async fn logout(&self, msg: Logout) -> Result<(), AuthError> {
        let digest = RefreshToken::digest(&msg.refresh);
        let state = store::refresh_token_state(&self.pool, &digest)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        store::revoke_family(&self.pool, state.family_id).await?;
        Ok(())
    }

    pub async fn logout_all(&self, msg: LogoutAll) -> Result<(), AuthError> {
        let mut tx = self.pool.begin().await?;
        store::bump_token_version(&mut tx, msg.principal.user_id).await?;
        store::revoke_user_refresh_tokens(&mut tx, msg.principal.user_id).await?;
        tx.commit().await?;
        // Old access tokens are refused on the very next request anywhere.
        self.view.invalidate().await;
        Ok(())
    }

    pub async fn change_password(&self, msg: ChangePassword) -> Result<TokenPair, AuthError> {
        let user_id = msg.principal.user_id;
        let mut conn = self.pool.acquire().await?;
        let user = store::find_user(&mut conn, user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        drop(conn);
        if !self
            .verify_password(msg.current_password, Some(user.password_hash))
            .await?
        {
            return Err(AuthError::WrongCurrentPassword);
        }
        let hash = self.hash_password(msg.new_password).await?;
        let mut tx = self.pool.begin().await?;
        let version = store::set_password(&mut tx, user_id, &hash).await?;
        store::revoke_user_refresh_tokens(&mut tx, user_id).await?;
        store::void_email_tokens(&mut tx, user_id, store::TokenPurpose::PasswordReset).await?;
        let pair = self
            .issue_pair(
                &mut tx,
                user_id,
                msg.principal.role,
                version,
                Uuid::new_v4(),
            )
            .await?;
        tx.commit().await?;
        self.view.invalidate().await;
        Ok(pair)
    }

    pub async fn me(&self, msg: GetMe) -> Result<UserView, AuthError> {
        let mut conn = self.pool.acquire().await?;
        let user = store::find_user(&mut conn, msg.principal.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        user_view(user)
    }

    pub async fn resolve_principal(&self, msg: ResolvePrincipal) -> Result<Principal, AuthError> {
        let access = store::user_access(&self.pool, msg.user_id)
            .await?
            .filter(|a| a.is_active && a.token_version == msg.token_version)
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            user_id: msg.user_id,
            role: parse_role(&access.role)?,
        })
    }

    pub async fn list_users(&self, msg: ListUsers) -> Result<(Vec<UserView>, i64), AuthError> {
        let filter = UserFilter {
            role: msg.role.map(|r| r.as_str().to_owned()),
            is_active: msg.is_active,
            email_contains: msg.email_contains.map(|e| e.to_lowercase()),
        };
        let (rows, count) =
            store::list_users(&self.pool, &filter, msg.page.limit(), msg.page.offset()).await?;
        let users = rows.into_iter().map(user_view).collect::<Result<_, _>>()?;
        Ok((users, count))
    }

    pub async fn update_user(&self, msg: UpdateUser) -> Result<UserView, AuthError> {
        // An admin locking themselves out could leave the shop with no admin.
        let demotes_self = msg.by.user_id == msg.user_id
            && (msg.role == Some(Role::Customer) || msg.is_active == Some(false));
        if demotes_self {
            return Err(AuthError::SelfLockout);
        }
        let mut tx = self.pool.begin().await?;
        let may_remove_admin = msg.role == Some(Role::Customer) || msg.is_active == Some(false);
        if may_remove_admin {
            // Every change that can take an admin away locks all active
            // admins first (in id order), so two such changes run one after
            // the other and the second sees the first.
            store::lock_active_admins(&mut tx).await?;
        }
        let row = store::update_user(
            &mut tx,
            msg.user_id,
            msg.role.map(Role::as_str),
            msg.is_active,
        )
        .await?
        .ok_or(AuthError::UserNotFound)?;
        if may_remove_admin && store::count_active_admins(&mut tx).await? == 0 {
            tx.rollback().await?;
            return Err(AuthError::LastAdmin);
        }
        if msg.is_active == Some(false) {
            store::revoke_user_refresh_tokens(&mut tx, msg.user_id).await?;
        }
        tx.commit().await?;
        self.view.invalidate().await;
        user_view(row)
    }
}

fn parse_role(stored: &str) -> Result<Role, AuthError> {
    Role::parse(stored).ok_or_else(|| {
        AuthError::Unexpected(anyhow::anyhow!(
            "unknown role {stored:?} in the auth database"
        ))
    })
}

pub(super) fn user_view(row: UserRow) -> Result<UserView, AuthError> {
    Ok(UserView {
        role: parse_role(&row.role)?,
        id: row.id,
        email: row.email,
        name: row.name,
        is_active: row.is_active,
        email_verified: row.email_verified,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

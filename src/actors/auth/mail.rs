//! Password reset and email verification: single-use tokens that reach the
//! user by mail. A token is 256 random bits, handed out once (in the mail)
//! and stored only as its SHA-256 digest; using it is one guarded write, so
//! it works once, before it expires, and never after a newer one was sent.

use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use super::error::AuthError;
use super::handlers::{user_view, AuthService};
use super::messages::*;
use crate::actors::notifications::{NotificationsActor, SendTokenMail};
use crate::actors::runtime::ActorClient;
use crate::domain::auth::RefreshToken;
use crate::domain::events::{CustomerData, Event, EventType};
use crate::domain::notifications::MailKind;
use crate::store::auth::{self as store, TokenPurpose, UserRow};

/// A password-reset request is answered no sooner than this, account or
/// not, so that its timing does not tell whether the email has an account
/// (the work for an account — a token written, a mail queued — stays well
/// under it).
pub const RESET_ANSWER_FLOOR: Duration = Duration::from_millis(400);

/// Where auth's mails go and how long their tokens last.
#[derive(Clone)]
pub struct AuthMail {
    pub notifications: ActorClient<NotificationsActor>,
    pub reset_ttl_mins: i64,
    pub verify_ttl_hours: i64,
}

impl AuthService {
    /// Issues a token of `purpose` to `user` and mails it as `kind`. A mail
    /// that cannot be queued is logged: the account's change stands, and
    /// the user can ask again.
    async fn issue_and_mail(
        &self,
        user: &UserRow,
        purpose: TokenPurpose,
        kind: MailKind,
    ) -> Result<(), AuthError> {
        let Some(mail) = &self.mail else {
            return Ok(());
        };
        let minutes = match purpose {
            TokenPurpose::PasswordReset => mail.reset_ttl_mins,
            TokenPurpose::EmailVerification => mail.verify_ttl_hours * 60,
        };
        let token = RefreshToken::generate();
        let expires_at = Utc::now() + chrono::Duration::minutes(minutes);
        let mut tx = self.pool.begin().await?;
        store::insert_email_token(
            &mut tx,
            &token.digest,
            user.id,
            purpose,
            &user.email,
            expires_at,
        )
        .await?;
        tx.commit().await?;
        // Queued beside the answer, not before it: the answer's time and
        // outcome must not depend on whether the account exists.
        let notifications = mail.notifications.clone();
        let message = SendTokenMail {
            kind,
            // Each token is its own mail.
            source_id: Uuid::new_v4(),
            to: user.email.clone(),
            name: user.name.clone(),
            token: token.token,
            valid_minutes: minutes,
        };
        let user_id = user.id;
        actix::spawn(async move {
            if let Err(e) = notifications.call(message).await {
                tracing::error!(user = %user_id, kind = kind.as_str(), error = %e, "token mail not queued");
            }
        });
        Ok(())
    }

    /// After registration: welcome, with a verification link.
    pub(super) async fn mail_welcome(&self, user: &UserRow) {
        if user.email_verified {
            return;
        }
        if let Err(e) = self
            .issue_and_mail(user, TokenPurpose::EmailVerification, MailKind::Welcome)
            .await
        {
            tracing::error!(user = %user.id, error = %e, "welcome mail not sent; the user can ask again");
        }
    }

    pub async fn request_password_reset(&self, msg: RequestPasswordReset) -> Result<(), AuthError> {
        let started = Instant::now();
        let outcome = self.reset_if_known(&msg.email).await;
        if let Some(rest) = RESET_ANSWER_FLOOR.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        // An outage is the same for every email: it tells nothing.
        outcome
    }

    async fn reset_if_known(&self, email: &str) -> Result<(), AuthError> {
        let user = store::find_user_by_email(&self.pool, email).await?;
        match user.filter(|u| u.is_active) {
            Some(user) => {
                // A failure here is logged, not answered: the answer must
                // not differ for an account that exists.
                if let Err(e) = self
                    .issue_and_mail(&user, TokenPurpose::PasswordReset, MailKind::PasswordReset)
                    .await
                {
                    tracing::error!(user = %user.id, error = %e, "password reset not issued; the user can ask again");
                }
                Ok(())
            }
            None => {
                // The same token work as for an account, then nothing.
                let _ = RefreshToken::generate();
                Ok(())
            }
        }
    }

    pub async fn confirm_password_reset(&self, msg: ConfirmPasswordReset) -> Result<(), AuthError> {
        let digest = RefreshToken::digest(&msg.token);
        // Look before hashing (a forged token costs no hash), use after.
        let mut conn = self.pool.acquire().await?;
        store::peek_email_token(&mut conn, &digest, TokenPurpose::PasswordReset)
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        drop(conn);
        let hash = self.hash_password(msg.new_password).await?;
        let mut tx = self.pool.begin().await?;
        let owner = store::use_email_token(&mut tx, &digest, TokenPurpose::PasswordReset)
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        let user = store::find_user(&mut tx, owner.user_id).await?;
        if !user.is_some_and(|u| u.is_active && u.email == owner.email) {
            return Err(AuthError::InvalidResetToken);
        }
        // As a password change: every access and refresh token dies.
        store::set_password(&mut tx, owner.user_id, &hash).await?;
        store::revoke_user_refresh_tokens(&mut tx, owner.user_id).await?;
        store::void_email_tokens(&mut tx, owner.user_id, TokenPurpose::PasswordReset).await?;
        tx.commit().await?;
        self.view().invalidate().await;
        tracing::info!(user = %owner.user_id, "password reset; every session revoked");
        Ok(())
    }

    pub async fn verify_email(&self, msg: VerifyEmail) -> Result<(), AuthError> {
        let digest = RefreshToken::digest(&msg.token);
        let mut tx = self.pool.begin().await?;
        let owner = store::use_email_token(&mut tx, &digest, TokenPurpose::EmailVerification)
            .await?
            .ok_or(AuthError::InvalidVerificationToken)?;
        let user = store::find_user(&mut tx, owner.user_id)
            .await?
            .ok_or(AuthError::InvalidVerificationToken)?;
        if user.email != owner.email {
            // Sent to an address the account no longer has.
            return Err(AuthError::InvalidVerificationToken);
        }
        if let Some(row) = store::set_email_verified(&mut tx, owner.user_id, &owner.email).await? {
            let mut data = CustomerData::from_name(row.id, &row.email, &row.name, row.created_at);
            data.email_verified = true;
            let event = Event::new(EventType::CustomerEmailVerified, row.id, &data);
            crate::store::events::append(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.view().invalidate().await;
        Ok(())
    }

    pub async fn resend_verification(&self, msg: ResendVerification) -> Result<(), AuthError> {
        let mut conn = self.pool.acquire().await?;
        let user = store::find_user(&mut conn, msg.principal.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        drop(conn);
        if user.email_verified {
            return Err(AuthError::EmailAlreadyVerified);
        }
        self.issue_and_mail(
            &user,
            TokenPurpose::EmailVerification,
            MailKind::VerifyEmail,
        )
        .await
    }

    pub async fn get_contact(&self, msg: GetContact) -> Result<Contact, AuthError> {
        let mut conn = self.pool.acquire().await?;
        let user = store::find_user(&mut conn, msg.user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        let view = user_view(user)?;
        Ok(Contact {
            email: view.email,
            name: view.name,
            email_verified: view.email_verified,
            is_active: view.is_active,
        })
    }
}

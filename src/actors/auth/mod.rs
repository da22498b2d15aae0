//! `AuthActor`: accounts, credentials and tokens. Owns the auth database.

pub mod addresses;
pub mod api_keys;
pub mod error;
pub mod handlers;
pub mod mail;
pub mod messages;

use std::sync::Arc;

use actix::{Actor, Context};
use sqlx::PgPool;

pub use error::AuthError;
pub use handlers::AuthService;
use messages::*;

use super::metrics::ActorMetrics;
use super::runtime::on_started;

/// The auth domain actor.
pub struct AuthActor {
    pool: PgPool,
    service: AuthService,
    metrics: Arc<ActorMetrics>,
}

impl AuthActor {
    /// An actor around its service; the pool is the service's own.
    pub fn new(service: AuthService, metrics: Arc<ActorMetrics>) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
        }
    }
}

impl Actor for AuthActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        // The view's channel runs on this actor's thread; started once.
        self.service.view().start();
    }
}

crate::lifecycle_handlers!(AuthActor);
crate::event_source_handlers!(AuthActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(AuthActor, AuthError, $message => $method, $reply);
    };
}

route!(Register => register, UserView);
route!(Login => login, TokenPair);
route!(Refresh => refresh, TokenPair);
route!(Logout => logout, ());
route!(LogoutAll => logout_all, ());
route!(ChangePassword => change_password, TokenPair);
route!(GetMe => me, UserView);
route!(ResolvePrincipal => resolve_principal, crate::domain::auth::Principal);
route!(api_keys::CreateApiKey => create_api_key, api_keys::CreatedApiKey);
route!(api_keys::ListApiKeys => list_api_keys, Vec<api_keys::ApiKeyView>);
route!(api_keys::GetApiKey => get_api_key, api_keys::ApiKeyView);
route!(api_keys::RevokeApiKey => revoke_api_key, api_keys::ApiKeyView);
route!(api_keys::ResolveApiKey => resolve_api_key, Option<api_keys::KeyGrant>);
route!(ListUsers => list_users, (Vec<UserView>, i64));
route!(UpdateUser => update_user, UserView);
route!(ListAddresses => list_addresses, Vec<AddressView>);
route!(GetAddress => get_address, AddressView);
route!(CreateAddress => create_address, AddressView);
route!(UpdateAddress => update_address, AddressView);
route!(DeleteAddress => delete_address, ());
route!(RequestPasswordReset => request_password_reset, ());
route!(ConfirmPasswordReset => confirm_password_reset, ());
route!(VerifyEmail => verify_email, ());
route!(ResendVerification => resend_verification, ());
route!(GetContact => get_contact, Contact);

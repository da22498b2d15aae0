//! `/api/v1/auth/…`: registration, login, token refresh and revocation, the
//! caller's account, and admin user management.

use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, Authenticated, QueryParams, ValidJson};
use super::pagination::{page, page_request};
use super::rate_limit::{client_ip, throttle};
use super::state::AppState;
use crate::actors::auth::messages::*;
use crate::actors::read_view::AuthEntry;
use crate::domain::auth::{check_password_policy, normalize_email, Role};
use crate::domain::pagination::Page;
use crate::domain::validation::ValidationErrors;

/// Longest display name accepted.
const MAX_NAME_CHARS: usize = 150;
/// Passwords longer than this cannot be right (the policy caps new ones at
/// 128), so login refuses them without spending a hash.
const MAX_LOGIN_PASSWORD_CHARS: usize = 1024;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            // Tokens and account data must never sit in a shared cache
            // (RFC 6749 §5.1).
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .service(web::resource("/register").route(web::post().to(register)))
            .service(web::resource("/login").route(web::post().to(login)))
            .service(web::resource("/refresh").route(web::post().to(refresh)))
            .service(web::resource("/logout").route(web::post().to(logout)))
            .service(web::resource("/logout-all").route(web::post().to(logout_all)))
            .service(web::resource("/password").route(web::post().to(change_password)))
            .service(web::resource("/me").route(web::get().to(me)))
            .service(web::resource("/password-reset").route(web::post().to(request_password_reset)))
            .service(
                web::resource("/password-reset/confirm")
                    .route(web::post().to(confirm_password_reset)),
            )
            .service(web::resource("/verify-email").route(web::post().to(verify_email)))
            .service(
                web::resource("/verify-email/resend").route(web::post().to(resend_verification)),
            )
            .service(web::resource("/users").route(web::get().to(list_users)))
            .service(web::resource("/users/{id}").route(web::patch().to(update_user))),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    register,
    login,
    refresh,
    logout,
    logout_all,
    change_password,
    me,
    list_users,
    update_user,
    request_password_reset,
    confirm_password_reset,
    verify_email,
    resend_verification
))]
pub struct Api;

/// Body of `POST /auth/register/`. Unknown fields (such as `role`) are
/// ignored: registration always makes a customer.
#[derive(Debug, Deserialize, ToSchema)]
struct RegisterRequest {
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
    /// 8 to 128 characters, not all digits, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// Display name, at most 150 characters.
    #[serde(default)]
    #[schema(max_length = 150)]
    name: Option<String>,
}

/// Creates a customer account (never an admin, whatever the body says).
#[utoipa::path(post, path = "/auth/register", tag = "auth", operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account", body = UserView),
        (status = 409, description = "`email_taken`: an account has this email"),
        (status = 422, description = "`validation_error`: invalid email, password policy, name too long"),
        (status = 429, description = "`rate_limited`: too many attempts; see `Retry-After`"),
    ))]
async fn register(
    req: HttpRequest,
    state: Data<AppState>,
    body: ValidJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(body) = body;
    let ip = client_ip(&req, state.settings.http.trust_forwarded_for);
    let limits = &state.settings.rate_limit;
    throttle(
        &state.rate_limiter,
        &[("register-client", &ip, limits.register_per_client)],
    )
    .await?;
    let mut errors = ValidationErrors::new();
    let email = errors.check(normalize_email(&body.email));
    errors.check(check_password_policy("password", &body.password));
    let name = body.name.unwrap_or_default().trim().to_owned();
    if name.chars().count() > MAX_NAME_CHARS {
        errors.add(
            "name",
            "too_long",
            format!("name must have at most {MAX_NAME_CHARS} characters"),
        );
    }
    errors.into_result().map_err(ApiError::Validation)?;
    let email =
        email.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("validated email missing")))?;
    let user = state
        .actors
        .auth
        .call(Register {
            email,
            password: body.password,
            name,
        })
        .await?;
    Ok(HttpResponse::Created().json(user))
}

/// Body of `POST /auth/login/`.
#[derive(Debug, Deserialize, ToSchema)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Exchanges an email and password for an access and refresh token pair.
#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A token pair", body = TokenPair),
        (status = 401, description = "`invalid_credentials`: no active account with these credentials"),
        (status = 429, description = "`rate_limited`: too many attempts; see `Retry-After`"),
    ))]
async fn login(
    req: HttpRequest,
    state: Data<AppState>,
    body: ValidJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let ValidJson(body) = body;
    let email = body.email.trim().to_lowercase();
    let limits = &state.settings.rate_limit;
    let ip = client_ip(&req, state.settings.http.trust_forwarded_for);
    // Tight per (account, client), so guessing from one place stops soon;
    // a looser ceiling per account, so a guess spread over many addresses
    // stops too, yet one attacker alone cannot lock the owner out.
    let account_here = format!("{email}|{ip}");
    throttle(
        &state.rate_limiter,
        &[
            ("login-client", &ip, limits.login_per_client),
            (
                "login-email-client",
                &account_here,
                limits.login_per_email_client,
            ),
            ("login-email", &email, limits.login_per_email),
        ],
    )
    .await?;
    if email.is_empty() || body.password.chars().count() > MAX_LOGIN_PASSWORD_CHARS {
        return Err(crate::actors::auth::AuthError::InvalidCredentials.into());
    }
    let pair = state
        .actors
        .auth
        .call(Login {
            email,
            password: body.password,
        })
        .await?;
    Ok(Json(pair))
}

/// Body of `POST /auth/refresh/` and `/auth/logout/`.
#[derive(Debug, Deserialize, ToSchema)]
struct RefreshRequest {
    refresh: String,
}

/// Rotates a refresh token into a new pair; the old one is spent, and
/// reusing it revokes the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refresh_token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "`invalid_token`: refresh token invalid, expired or revoked; `token_reused`: already used, session revoked"),
    ))]
async fn refresh(
    state: Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let pair = state
        .actors
        .auth
        .call(Refresh {
            refresh: body.0.refresh,
        })
        .await?;
    Ok(Json(pair))
}

/// Revokes one refresh token (its session).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`invalid_token`: the refresh token is invalid, expired or revoked"),
    ))]
async fn logout(
    state: Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .auth
        .call(Logout {
            refresh: body.0.refresh,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes every token of the caller (all sessions, access tokens too).
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", operation_id = "logout_all",
    security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked")))]
async fn logout_all(state: Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .auth
        .call(LogoutAll { principal: user.0 })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /auth/password/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password and revokes every other session; answers
/// a fresh token pair.
#[utoipa::path(post, path = "/auth/password", tag = "auth", operation_id = "change_password",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 422, description = "`validation_error`: `current_password` incorrect, or `new_password` breaks the policy"),
        (status = 429, description = "`rate_limited`: too many attempts; see `Retry-After`"),
    ))]
async fn change_password(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<ChangePasswordRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let ValidJson(body) = body;
    // Each change checks a guess of the current password: throttled like
    // a login, per user.
    let user_key = user.0.user_id.to_string();
    let limit = state.settings.rate_limit.password_per_user;
    throttle(&state.rate_limiter, &[("password-user", &user_key, limit)]).await?;
    check_password_policy("new_password", &body.new_password)
        .map_err(|e| ApiError::Validation(ValidationErrors::single(&e.field, e.code, e.message)))?;
    let pair = state
        .actors
        .auth
        .call(ChangePassword {
            principal: user.0,
            current_password: body.current_password,
            new_password: body.new_password,
        })
        .await?;
    Ok(Json(pair))
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", operation_id = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserView)))]
async fn me(state: Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
    let view = &state.actors.auth_view;
    let key = format!("profile:{}", user.0.user_id);
    let body = match view.get(&key) {
        Some(AuthEntry::Profile(body)) => body,
        _ => {
            let ticket = view.ticket();
            let me = state.actors.auth.call(GetMe { principal: user.0 }).await?;
            let body =
                Bytes::from(serde_json::to_vec(&me).map_err(|e| ApiError::Internal(e.into()))?);
            view.put(ticket, key, AuthEntry::Profile(body.clone()));
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// Lists accounts (admins only), newest first.
#[utoipa::path(get, path = "/auth/users", tag = "auth", operation_id = "list_users",
    security(("bearer" = [])),
    params(
        crate::http::pagination::PageParams,
        ("role" = Option<Role>, Query, description = "Only this role"),
        ("is_active" = Option<bool>, Query, description = "Only active (or inactive) accounts"),
        ("email" = Option<String>, Query, description = "Emails containing this text"),
    ),
    responses(
        (status = 200, description = "One page of accounts", body = Page<UserView>),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_users(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Page<UserView>>, ApiError> {
    let params = QueryParams::from_request(&req);
    let mut errors = ValidationErrors::new();
    let paging = page_request(&params);
    let role = params.get("role").and_then(|r| {
        let role = Role::parse(r);
        if role.is_none() {
            errors.add("role", "invalid", "role must be customer or admin");
        }
        role
    });
    let is_active = params.bool("is_active", &mut errors);
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    let paging = paging?;
    let (users, count) = state
        .actors
        .auth
        .call(ListUsers {
            page: paging,
            role,
            is_active,
            email_contains: params
                .get("email")
                .map(str::to_owned)
                .filter(|e| !e.is_empty()),
        })
        .await?;
    Ok(Json(page(&req, paging, count, users)?))
}

/// Body of `PATCH /auth/users/{id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    role: Option<Role>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    is_active: Option<bool>,
}

/// Changes an account's role or active flag (admins only). An admin cannot
/// lock themself out, and the last active admin stays one.
#[utoipa::path(patch, path = "/auth/users/{id}", tag = "auth", operation_id = "update_user",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such user"),
        (status = 409, description = "`self_lockout`: an admin cannot demote or deactivate themself; `last_admin`: the last active admin must stay"),
        (status = 422, description = "`validation_error`: neither `role` nor `is_active` given"),
    ))]
async fn update_user(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    // A malformed id cannot name a user: 404, like any unknown id.
    let user_id = path_id(&id, "user")?;
    let ValidJson(body) = body;
    if body.role.is_none() && body.is_active.is_none() {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "empty",
            "give role and/or is_active",
        )));
    }
    let user = state
        .actors
        .auth
        .call(UpdateUser {
            by: admin.0,
            user_id,
            role: body.role,
            is_active: body.is_active,
        })
        .await?;
    Ok(Json(user))
}

/// Longest token accepted: a real one is 43 characters; anything much
/// longer is refused without a database look-up.
const MAX_TOKEN_CHARS: usize = 256;

/// The answer of requests whose effect is a mail, which must not say
/// whether an account exists.
#[derive(Debug, serde::Serialize, ToSchema)]
struct MailAccepted {
    #[schema(
        example = "If an account with this email exists, a password reset link has been sent to it."
    )]
    detail: &'static str,
}

/// What every password-reset request is answered, account or not.
const RESET_ACCEPTED: MailAccepted = MailAccepted {
    detail: "If an account with this email exists, a password reset link has been sent to it.",
};

/// Body of `POST /auth/password-reset/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordResetRequest {
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
}

/// Mails a single-use password-reset link (valid `auth.reset_ttl_mins`) if
/// the email has an active account. The answer is the same, in about the
/// same time, whether or not it does.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", operation_id = "request_password_reset",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted: a link was mailed if the account exists", body = MailAccepted),
        (status = 422, description = "`validation_error`: `email` missing or not an email address"),
        (status = 429, description = "`rate_limited`: too many requests from this address or for this email; see `Retry-After`"),
    ))]
async fn request_password_reset(
    req: HttpRequest,
    state: Data<AppState>,
    body: ValidJson<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(body) = body;
    let email = normalize_email(&body.email)
        .map_err(|e| ApiError::Validation(ValidationErrors::single(&e.field, e.code, e.message)))?;
    let ip = client_ip(&req, state.settings.http.trust_forwarded_for);
    let limits = &state.settings.rate_limit;
    throttle(
        &state.rate_limiter,
        &[
            ("reset-client", &ip, limits.password_reset_per_client),
            ("reset-email", &email, limits.password_reset_per_email),
        ],
    )
    .await?;
    state
        .actors
        .auth
        .call(RequestPasswordReset { email })
        .await?;
    Ok(HttpResponse::Accepted().json(RESET_ACCEPTED))
}

/// Body of `POST /auth/password-reset/confirm/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmPasswordResetRequest {
    /// The token of the reset mail.
    token: String,
    /// 8 to 128 characters, not only spaces (as at registration).
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Sets a new password with the token of a reset mail, and revokes every
/// session and token of the account (as a password change does). The token
/// works once.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", operation_id = "confirm_password_reset",
    request_body = ConfirmPasswordResetRequest,
    responses(
        (status = 204, description = "The password is changed; log in with it"),
        (status = 400, description = "`invalid_reset_token`: the token is unknown, expired, already used or forged"),
        (status = 422, description = "`validation_error`: a field missing, or `new_password` breaks the policy"),
        (status = 429, description = "`rate_limited`: too many attempts from this address; see `Retry-After`"),
    ))]
async fn confirm_password_reset(
    req: HttpRequest,
    state: Data<AppState>,
    body: ValidJson<ConfirmPasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(body) = body;
    throttle_token_guess(&req, &state).await?;
    check_password_policy("new_password", &body.new_password)
        .map_err(|e| ApiError::Validation(ValidationErrors::single(&e.field, e.code, e.message)))?;
    let token = body.token.trim().to_owned();
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(crate::actors::auth::AuthError::InvalidResetToken.into());
    }
    state
        .actors
        .auth
        .call(ConfirmPasswordReset {
            token,
            new_password: body.new_password,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Token confirmations are guesses of a token: bounded per client address.
async fn throttle_token_guess(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let ip = client_ip(req, state.settings.http.trust_forwarded_for);
    let limit = state.settings.rate_limit.token_confirm_per_client;
    throttle(&state.rate_limiter, &[("token-confirm-client", &ip, limit)]).await
}

/// Body of `POST /auth/verify-email/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyEmailRequest {
    /// The token of the verification mail.
    token: String,
}

/// Marks the account's email verified with the token of a verification
/// mail (sent on registration, or again on request). The token works once.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", operation_id = "verify_email",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The email is verified"),
        (status = 400, description = "`invalid_verification_token`: the token is unknown, expired, already used, forged, or was sent to an address the account no longer has"),
        (status = 422, description = "`validation_error`: `token` missing or not a string"),
        (status = 429, description = "`rate_limited`: too many attempts from this address; see `Retry-After`"),
    ))]
async fn verify_email(
    req: HttpRequest,
    state: Data<AppState>,
    body: ValidJson<VerifyEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(body) = body;
    throttle_token_guess(&req, &state).await?;
    let token = body.token.trim().to_owned();
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(crate::actors::auth::AuthError::InvalidVerificationToken.into());
    }
    state.actors.auth.call(VerifyEmail { token }).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mails the caller a new verification link (earlier links stop working).
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "auth", operation_id = "resend_verification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new verification link was mailed", body = MailAccepted),
        (status = 409, description = "`email_already_verified`: nothing to verify"),
        (status = 429, description = "`rate_limited`: too many requests; see `Retry-After`"),
    ))]
async fn resend_verification(
    state: Data<AppState>,
    user: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user_key = user.0.user_id.to_string();
    let limit = state.settings.rate_limit.verify_resend_per_user;
    throttle(
        &state.rate_limiter,
        &[("verify-resend-user", &user_key, limit)],
    )
    .await?;
    state
        .actors
        .auth
        .call(ResendVerification { principal: user.0 })
        .await?;
    Ok(HttpResponse::Accepted().json(MailAccepted {
        detail: "A new verification link has been sent to your email address.",
    }))
}

/// The checkout gate: with `auth.require_verified_email_for_checkout`, a
/// customer whose email is not verified is refused (403
/// `email_unverified`). Admins are not gated.
pub(crate) async fn require_verified_email(
    state: &AppState,
    principal: &crate::domain::auth::Principal,
) -> Result<(), ApiError> {
    if !state.settings.auth.require_verified_email_for_checkout || principal.role != Role::Customer
    {
        return Ok(());
    }
    let contact = state
        .actors
        .auth
        .call(GetContact {
            user_id: principal.user_id,
        })
        .await?;
    if contact.email_verified {
        Ok(())
    } else {
        Err(ApiError::Refused {
            code: "email_unverified",
            detail: "verify your email address before placing an order (see POST /api/v1/auth/verify-email/resend/)",
        })
    }
}

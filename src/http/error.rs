//! The one place where errors become HTTP: every failure is rendered as an
//! RFC 9457 `application/problem+json` body with a stable `code`. Internal
//! details are logged with the request id, never sent.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::auth::AuthError;
use crate::actors::carts::CartsError;
use crate::actors::catalog::CatalogError;
use crate::actors::orders::OrdersError;
use crate::actors::payments::PaymentsError;
use crate::actors::recommendations::RecommenderError;
use crate::actors::runtime::{CallError, RuntimeError};
use crate::actors::webhooks::WebhooksError;
use crate::domain::catalog::location::StockRefusal;
use crate::domain::catalog::stock::Shortfall;
use crate::domain::idempotency::SavedResponse;
use crate::domain::orders::fulfilment::FulfilmentRefusal;
use crate::domain::orders::returns::ReturnRefusal;
use crate::domain::orders::status::TransitionError;
use crate::domain::payments::refund::RefundRefusal;
use crate::domain::promotions::Inapplicable;
use crate::domain::validation::{FieldError, ValidationErrors};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client is told to wait after a 503 from a full mailbox.
const OVERLOAD_RETRY_AFTER_SECS: u64 = 1;

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A JSON body broke field rules (missing, wrong type, invalid value).
    #[error("the request body has invalid fields")]
    Validation(ValidationErrors),
    /// Query parameters (filters, paging) are invalid.
    #[error("the query string has invalid parameters")]
    InvalidQuery(ValidationErrors),
    /// The body is not parseable JSON.
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is not declared as JSON.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// No credentials where they are required.
    #[error("authentication credentials were not provided")]
    NotAuthenticated,
    /// Credentials were presented and refused. `code` says which case.
    #[error("{detail}")]
    Unauthorized {
        code: &'static str,
        detail: &'static str,
    },
    /// Authenticated but not allowed.
    #[error("you do not have permission to perform this action")]
    Forbidden,
    /// Authenticated and allowed in general, but refused this request
    /// until something about the account changes; `code` says what.
    #[error("{detail}")]
    Refused {
        code: &'static str,
        detail: &'static str,
    },
    /// The resource does not exist (or is not yours).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The state of a resource forbids the request.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Some lines cannot be met from stock; `errors` names each one.
    #[error("not enough stock for some items")]
    InsufficientStock(ValidationErrors),
    /// The request cannot be understood as sent (e.g. a webhook whose
    /// signature is refused).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// A request header is malformed.
    #[error("a request header is invalid")]
    InvalidHeader(ValidationErrors),
    /// The request is well-formed but cannot be processed as sent.
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("too many requests; retry after {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// An actor's mailbox is full; shed load at once.
    #[error("the {0} service is overloaded; retry shortly")]
    Overloaded(&'static str),
    /// A dependency is down.
    #[error("the {0} service is unavailable")]
    Unavailable(&'static str),
    /// The request or an actor call took too long.
    #[error("the request took too long")]
    Timeout,
    /// A bug or an outage; logged, never detailed to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// An RFC 9457 problem details body, as every error is answered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:emporium:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:emporium:problem:not_found")]
    kind: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Not Found")]
    title: &'static str,
    /// The HTTP status.
    #[schema(example = 404)]
    status: u16,
    /// What went wrong, for a human.
    #[schema(example = "order not found")]
    detail: String,
    /// Stable machine-readable code; clients branch on this.
    #[schema(example = "not_found")]
    code: &'a str,
    /// One entry per field at fault (validation, query, header and stock
    /// errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    /// A retry while the request first sent with its `Idempotency-Key` is
    /// still running.
    pub fn idempotency_in_flight() -> ApiError {
        ApiError::Conflict {
            code: "idempotency_conflict",
            detail: "a request with this Idempotency-Key is still being processed; retry later"
                .into(),
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_error",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::InsufficientStock(_) => "insufficient_stock",
            ApiError::InvalidHeader(_) => "invalid_header",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NotAuthenticated => "not_authenticated",
            ApiError::Unauthorized { code, .. } => code,
            ApiError::Forbidden => "permission_denied",
            ApiError::Refused { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::BadRequest { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded(_) => "service_overloaded",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            ApiError::Validation(e)
            | ApiError::InvalidQuery(e)
            | ApiError::InsufficientStock(e)
            | ApiError::InvalidHeader(e) => Some(e.errors()),
            _ => None,
        }
    }

    /// A 401 for a token that failed verification.
    pub fn invalid_token() -> Self {
        ApiError::Unauthorized {
            code: "invalid_token",
            detail: "the token is invalid, expired or revoked",
        }
    }
}

/// Renders a problem body for `status` with `code`, for errors raised
/// outside `ApiError` (unknown routes, wrong methods, framework errors).
pub fn problem_response(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .body(problem_json(status, code, detail, None))
}

fn problem_json(
    status: StatusCode,
    code: &str,
    detail: String,
    errors: Option<&[FieldError]>,
) -> Vec<u8> {
    let problem = Problem {
        kind: format!("urn:emporium:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
        errors,
    };
    // A struct of strings and numbers always serializes.
    serde_json::to_vec(&problem).unwrap_or_default()
}

impl ApiError {
    /// The `detail` clients see; internal errors and shed requests are
    /// logged here, once per answer.
    fn public_detail(&self) -> String {
        match self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            ApiError::Unavailable(_) | ApiError::Overloaded(_) | ApiError::Timeout => {
                tracing::warn!(error = %self, "request shed");
                self.to_string()
            }
            _ => self.to_string(),
        }
    }

    /// The problem as an answer an idempotency key can save and replay.
    pub fn answer(&self) -> SavedResponse {
        let status = self.status_code();
        SavedResponse {
            status: status.as_u16(),
            content_type: PROBLEM_JSON.to_owned(),
            body: problem_json(
                status,
                self.code(),
                self.public_detail(),
                self.field_errors(),
            ),
            retry_after_secs: self.retry_after_secs(),
        }
    }

    /// When a client should try again, for the answers that say so.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => Some(OVERLOAD_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::InvalidQuery(_)
            | ApiError::MalformedJson(_)
            | ApiError::InvalidHeader(_)
            | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::InsufficientStock(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotAuthenticated | ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = problem_json(
            status,
            self.code(),
            self.public_detail(),
            self.field_errors(),
        );
        let mut response = HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .body(body);
        let headers = response.headers_mut();
        match self {
            ApiError::NotAuthenticated | ApiError::Unauthorized { .. } => {
                let challenge = match self.code() {
                    "not_authenticated" => "Bearer realm=\"emporium\"".to_owned(),
                    code => format!("Bearer realm=\"emporium\", error=\"{code}\""),
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<WebhooksError> for ApiError {
    fn from(e: WebhooksError) -> Self {
        match e {
            WebhooksError::Validation(errors) => ApiError::Validation(errors),
            WebhooksError::EndpointNotFound => ApiError::NotFound("webhook endpoint"),
            WebhooksError::DeliveryNotFound => ApiError::NotFound("webhook delivery"),
            WebhooksError::EndpointDisabled => ApiError::Conflict {
                code: "endpoint_disabled",
                detail: e.to_string(),
            },
            WebhooksError::Panicked(p) => ApiError::Internal(p.into()),
            WebhooksError::Unavailable(e) => database_unavailable(&e),
            WebhooksError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Validation(errors) => ApiError::Validation(errors),
            AuthError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                detail: e.to_string(),
            },
            AuthError::InvalidCredentials => ApiError::Unauthorized {
                code: "invalid_credentials",
                detail: "no active account found with the given credentials",
            },
            AuthError::WrongCurrentPassword => ApiError::Validation(ValidationErrors::single(
                "current_password",
                "incorrect",
                "the current password is incorrect",
            )),
            AuthError::InvalidToken => ApiError::invalid_token(),
            AuthError::RefreshReused => ApiError::Unauthorized {
                code: "token_reused",
                detail: "this refresh token was already used; the session has been revoked",
            },
            AuthError::UserNotFound => ApiError::NotFound("user"),
            AuthError::InvalidResetToken => ApiError::BadRequest {
                code: "invalid_reset_token",
                detail: e.to_string(),
            },
            AuthError::InvalidVerificationToken => ApiError::BadRequest {
                code: "invalid_verification_token",
                detail: e.to_string(),
            },
            AuthError::EmailAlreadyVerified => ApiError::Conflict {
                code: "email_already_verified",
                detail: e.to_string(),
            },
            AuthError::AddressNotFound => ApiError::NotFound("address"),
            AuthError::ApiKeyNotFound => ApiError::NotFound("api key"),
            AuthError::AddressLimit => ApiError::Conflict {
                code: "address_limit",
                detail: e.to_string(),
            },
            AuthError::SelfLockout => ApiError::Conflict {
                code: "self_lockout",
                detail: e.to_string(),
            },
            AuthError::LastAdmin => ApiError::Conflict {
                code: "last_admin",
                detail: e.to_string(),
            },
            AuthError::Panicked(p) => ApiError::Internal(p.into()),
            AuthError::Unavailable(e) => database_unavailable(&e),
            AuthError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let conflict = |code: &'static str, e: &CatalogError| ApiError::Conflict {
            code,
            detail: e.to_string(),
        };
        match e {
            CatalogError::Validation(errors) => ApiError::Validation(errors),
            CatalogError::InvalidQuery(errors) => ApiError::InvalidQuery(errors),
            CatalogError::CategoryNotFound => ApiError::NotFound("category"),
            CatalogError::ProductNotFound => ApiError::NotFound("product"),
            CatalogError::Taken { field, .. } => conflict(
                match field {
                    "sku" => "sku_taken",
                    "name" => "name_taken",
                    _ => "slug_taken",
                },
                &e,
            ),
            CatalogError::CategoryHasProducts => conflict("category_has_products", &e),
            CatalogError::CategoryHasChildren => conflict("category_has_children", &e),
            CatalogError::ProductInUse => conflict("product_in_use", &e),
            CatalogError::VariantNotFound => ApiError::NotFound("variant"),
            CatalogError::ImageNotFound => ApiError::NotFound("image"),
            CatalogError::VariantExists => conflict("variant_exists", &e),
            CatalogError::LastVariant => conflict("last_variant", &e),
            CatalogError::VariantInUse => conflict("variant_in_use", &e),
            CatalogError::OptionChange(ref why) => conflict(why.code(), &e),
            CatalogError::InsufficientStock(lines) => insufficient_stock(&lines),
            CatalogError::ReservationNotHeld(_) => conflict("reservation_not_held", &e),
            CatalogError::LocationNotFound => ApiError::NotFound("stock location"),
            CatalogError::LocationInUse => conflict("location_in_use", &e),
            CatalogError::Stock(StockRefusal::NoActiveLocation) => {
                conflict("no_active_location", &e)
            }
            CatalogError::Stock(StockRefusal::BelowHeld { .. }) => conflict("stock_below_held", &e),
            CatalogError::Stock(StockRefusal::UnknownLocation(_)) => ApiError::Validation(
                ValidationErrors::single("levels", "unknown_location", e.to_string()),
            ),
            CatalogError::Unavailable(e) => database_unavailable(&e),
            CatalogError::Panicked(p) => ApiError::Internal(p.into()),
            CatalogError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

/// A domain's database outage, as its actor classified it: a 503 the
/// client may retry.
fn database_unavailable(e: &anyhow::Error) -> ApiError {
    tracing::warn!(error = %format!("{e:#}"), "database unavailable");
    ApiError::Unavailable("database")
}

/// One error per unmet line, keyed by product id.
fn insufficient_stock(lines: &[Shortfall]) -> ApiError {
    let mut errors = ValidationErrors::new();
    for line in lines {
        errors.add(
            &format!("items.{}", line.variant_id),
            line.reason,
            format!("requested {}, available {}", line.requested, line.available),
        );
    }
    ApiError::InsufficientStock(errors)
}

impl From<OrdersError> for ApiError {
    fn from(e: OrdersError) -> Self {
        match e {
            OrdersError::Validation(errors) => ApiError::Validation(errors),
            OrdersError::NotFound => ApiError::NotFound("order"),
            OrdersError::FulfilmentNotFound => ApiError::NotFound("fulfilment"),
            OrdersError::ReturnNotFound => ApiError::NotFound("return"),
            OrdersError::HasFulfilments => ApiError::Conflict {
                code: "order_has_fulfilments",
                detail: e.to_string(),
            },
            // The edge turns this into a refund; reaching here is a bug.
            OrdersError::CancelByRefund { .. } => {
                ApiError::Internal(anyhow::anyhow!("an unanswered cancel-by-refund"))
            }
            OrdersError::Return(refusal) => match refusal {
                ReturnRefusal::WindowClosed { .. } | ReturnRefusal::OverReceipt { .. } => {
                    ApiError::Unprocessable {
                        code: refusal.code(),
                        detail: refusal.to_string(),
                    }
                }
                ReturnRefusal::InvalidState { .. } | ReturnRefusal::OverReturn { .. } => {
                    ApiError::Conflict {
                        code: refusal.code(),
                        detail: refusal.to_string(),
                    }
                }
            },
            OrdersError::RefundExceedsTotal => ApiError::Conflict {
                code: "refund_exceeds_captured",
                detail: e.to_string(),
            },
            OrdersError::Fulfilment(refusal) => match refusal {
                FulfilmentRefusal::SeveralLocations => ApiError::Unprocessable {
                    code: refusal.code(),
                    detail: refusal.to_string(),
                },
                FulfilmentRefusal::InvalidState { .. }
                | FulfilmentRefusal::OverFulfilment { .. }
                | FulfilmentRefusal::NotAtLocation { .. }
                | FulfilmentRefusal::NotHeld { .. } => ApiError::Conflict {
                    code: refusal.code(),
                    detail: refusal.to_string(),
                },
            },
            OrdersError::Transition(TransitionError::NotAllowed(_)) => ApiError::Forbidden,
            OrdersError::Transition(t @ TransitionError::InvalidState { .. }) => {
                ApiError::Conflict {
                    code: "invalid_transition",
                    detail: t.to_string(),
                }
            }
            OrdersError::InsufficientStock(lines) => insufficient_stock(&lines),
            OrdersError::PromotionInapplicable(why) => ApiError::Unprocessable {
                code: why.code(),
                detail: why.to_string(),
            },
            OrdersError::RuleNotFound(entity) => ApiError::NotFound(entity),
            OrdersError::RuleConflict { code, detail } => ApiError::Conflict { code, detail },
            OrdersError::Shipping(problem) => ApiError::Unprocessable {
                code: problem.code(),
                detail: problem.message().into(),
            },
            OrdersError::PaidByAnotherPayment => ApiError::Conflict {
                code: "already_paid",
                detail: e.to_string(),
            },
            OrdersError::TotalChanged { .. } => ApiError::Conflict {
                code: "total_changed",
                detail: e.to_string(),
            },
            OrdersError::IdempotencyLeaseLost => ApiError::idempotency_in_flight(),
            OrdersError::CatalogUnavailable(why) => {
                tracing::warn!(why, "catalog unavailable to orders");
                ApiError::Unavailable("catalog")
            }
            OrdersError::Panicked(p) => ApiError::Internal(p.into()),
            OrdersError::Unavailable(e) => database_unavailable(&e),
            OrdersError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<PaymentsError> for ApiError {
    fn from(e: PaymentsError) -> Self {
        let conflict = |code: &'static str, e: &PaymentsError| ApiError::Conflict {
            code,
            detail: e.to_string(),
        };
        match e {
            PaymentsError::Validation(errors) => ApiError::Validation(errors),
            PaymentsError::NotFound => ApiError::NotFound("payment"),
            PaymentsError::OrderNotFound => ApiError::NotFound("order"),
            PaymentsError::OrderNotPayable(_) => conflict("order_not_payable", &e),
            PaymentsError::AlreadyPaying => conflict("payment_exists", &e),
            PaymentsError::Transition(_) => conflict("invalid_transition", &e),
            PaymentsError::PartiallyRefunded => conflict("partially_refunded", &e),
            PaymentsError::ReturnNotFound => ApiError::NotFound("return"),
            PaymentsError::NotSettled => conflict("payment_not_settled", &e),
            PaymentsError::ReturnNotReceived(_) => conflict("invalid_transition", &e),
            PaymentsError::Refund(refusal) => match refusal {
                RefundRefusal::UnknownLine(index) => {
                    ApiError::Validation(ValidationErrors::single(
                        &format!("lines.{index}.line_id"),
                        "unknown",
                        "no such line in this order",
                    ))
                }
                RefundRefusal::Nothing => ApiError::Unprocessable {
                    code: refusal.code(),
                    detail: refusal.to_string(),
                },
                RefundRefusal::OverRefund { .. }
                | RefundRefusal::ShippingRefunded
                | RefundRefusal::ExceedsCaptured { .. } => ApiError::Conflict {
                    code: refusal.code(),
                    detail: refusal.to_string(),
                },
            },
            PaymentsError::BadSignature(_) => ApiError::BadRequest {
                code: "invalid_signature",
                detail: e.to_string(),
            },
            PaymentsError::BadEvent(_) => ApiError::BadRequest {
                code: "invalid_event",
                detail: e.to_string(),
            },
            PaymentsError::TooManyFailedAttempts { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            PaymentsError::IdempotencyLeaseLost => ApiError::idempotency_in_flight(),
            PaymentsError::OrdersUnavailable(why) => {
                tracing::warn!(why, "orders unavailable to payments");
                ApiError::Unavailable("orders")
            }
            PaymentsError::Panicked(p) => ApiError::Internal(p.into()),
            PaymentsError::Unavailable(e) => database_unavailable(&e),
            PaymentsError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<CartsError> for ApiError {
    fn from(e: CartsError) -> Self {
        match e {
            CartsError::Validation(errors) => ApiError::Validation(errors),
            CartsError::NotFound => ApiError::NotFound("cart"),
            CartsError::NoSuchLine => ApiError::NotFound("cart item"),
            CartsError::InsufficientStock {
                requested,
                available,
            } => ApiError::InsufficientStock(ValidationErrors::single(
                "quantity",
                "insufficient_stock",
                format!("requested {requested}, available {available}"),
            )),
            CartsError::PromotionNotFound => ApiError::NotFound("promotion"),
            CartsError::CodeTaken => ApiError::Conflict {
                code: "code_taken",
                detail: e.to_string(),
            },
            CartsError::PromotionRefused(Inapplicable::UsedUp) => ApiError::Conflict {
                code: Inapplicable::UsedUp.code(),
                detail: Inapplicable::UsedUp.to_string(),
            },
            CartsError::PromotionRefused(why) => ApiError::Unprocessable {
                code: why.code(),
                detail: why.to_string(),
            },
            CartsError::Shipping(problem) => ApiError::Unprocessable {
                code: problem.code(),
                detail: problem.message().into(),
            },
            CartsError::CartEmpty => ApiError::Conflict {
                code: "cart_empty",
                detail: e.to_string(),
            },
            CartsError::CartNotReady(_) => ApiError::Conflict {
                code: "cart_not_ready",
                detail: e.to_string(),
            },
            CartsError::CheckoutInProgress => ApiError::Conflict {
                code: "checkout_in_progress",
                detail: e.to_string(),
            },
            CartsError::Order(e) => ApiError::from(e),
            CartsError::OrdersUnavailable(why) => {
                tracing::warn!(why, "orders unavailable to carts");
                ApiError::Unavailable("orders")
            }
            CartsError::CatalogUnavailable(why) => {
                tracing::warn!(why, "catalog unavailable to carts");
                ApiError::Unavailable("catalog")
            }
            CartsError::Panicked(p) => ApiError::Internal(p.into()),
            CartsError::Unavailable(e) => database_unavailable(&e),
            CartsError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<RecommenderError> for ApiError {
    fn from(e: RecommenderError) -> Self {
        match e {
            RecommenderError::NotReady => ApiError::Unavailable("recommendations"),
            RecommenderError::UnknownProduct => ApiError::NotFound("product"),
            RecommenderError::SourceUnavailable(source) => ApiError::Unavailable(source),
            RecommenderError::Panicked(p) => ApiError::Internal(p.into()),
            RecommenderError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Panicked(p) => ApiError::Internal(p.into()),
            RuntimeError::Database(e) => {
                tracing::warn!(error = %e, "database unreachable");
                ApiError::Unavailable("database")
            }
        }
    }
}

impl<E: Into<ApiError>> From<CallError<E>> for ApiError {
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::MailboxFull(actor) => ApiError::Overloaded(actor),
            CallError::Unavailable(actor) => ApiError::Unavailable(actor),
            CallError::Timeout(_) => ApiError::Timeout,
            CallError::Domain(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn body(
        e: ApiError,
    ) -> (
        StatusCode,
        serde_json::Value,
        actix_web::http::header::HeaderMap,
    ) {
        let response = e.error_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body()).await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).expect("json"),
            headers,
        )
    }

    #[actix_web::test]
    async fn validation_errors_list_each_field() {
        let (status, json, headers) = body(ApiError::Validation(ValidationErrors::single(
            "email", "invalid", "bad",
        )))
        .await;
        assert_eq!(status, 422);
        assert_eq!(headers.get("content-type").expect("ct"), PROBLEM_JSON);
        assert_eq!(json["code"], "validation_error");
        assert_eq!(json["type"], "urn:emporium:problem:validation_error");
        assert_eq!(json["errors"][0]["field"], "email");
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let (status, json, _) = body(ApiError::Internal(anyhow::anyhow!(
            "password=hunter2 in SQL"
        )))
        .await;
        assert_eq!(status, 500);
        assert!(!json.to_string().contains("hunter2"));
    }

    #[actix_web::test]
    async fn auth_failures_carry_a_bearer_challenge() {
        let (status, json, headers) = body(AuthError::InvalidToken.into()).await;
        assert_eq!(status, 401);
        assert_eq!(json["code"], "invalid_token");
        let challenge = headers.get("www-authenticate").expect("challenge");
        assert!(challenge.to_str().expect("ascii").contains("invalid_token"));
    }

    #[actix_web::test]
    async fn a_full_mailbox_is_503_with_retry_after() {
        let (status, json, headers) =
            body(CallError::<AuthError>::MailboxFull("auth").into()).await;
        assert_eq!(status, 503);
        assert_eq!(json["code"], "service_overloaded");
        assert!(headers.contains_key("retry-after"));
    }

    #[actix_web::test]
    async fn a_database_outage_is_503_and_a_bug_is_500() {
        let outage = OrdersError::from(sqlx::Error::PoolTimedOut);
        let (status, json, headers) = body(outage.into()).await;
        assert_eq!(status, 503);
        assert_eq!(json["code"], "service_unavailable");
        assert!(headers.contains_key("retry-after"));
        let bug = OrdersError::from(sqlx::Error::RowNotFound);
        let (status, _, _) = body(bug.into()).await;
        assert_eq!(status, 500);
    }

    #[actix_web::test]
    async fn rate_limits_say_when_to_retry() {
        let (status, _, headers) = body(ApiError::RateLimited {
            retry_after_secs: 42,
        })
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers.get("retry-after").expect("header"), "42");
    }
}

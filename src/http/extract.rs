//! Extractors that turn a raw request into checked input: JSON bodies with
//! per-field errors, authenticated principals, and query parameters.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{BytesMut, Data};
use actix_web::ResponseError as _;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::rate_limit::Verdict;
use super::state::AppState;
use crate::actors::auth::api_keys::{KeyGrant, ResolveApiKey};
use crate::actors::auth::messages::ResolvePrincipal;
use crate::actors::read_view::AuthEntry;
use crate::domain::auth::api_keys;
use crate::domain::auth::{Principal, TokenError};
use crate::domain::validation::ValidationErrors;

/// A resource's id from the path. A malformed id names nothing, so it is a
/// 404 like an unknown one (never a 400 that would tell the two apart).
pub fn path_id(raw: &str, what: &'static str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

/// A JSON body of type `T`. Refuses a non-JSON content type (415), a body
/// over the limit (413), unparseable JSON (400), and fields that are
/// missing, unknown where forbidden, or of the wrong type (422, per field).
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<Data<AppState>>()
            .map_or(64 * 1024, |s| s.settings.http.body_limit_bytes);
        let json = is_json(req);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared_len.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ValidJson)
        })
    }
}

/// JSON's spelling of U+0000, which PostgreSQL cannot store in text.
const ESCAPED_NUL: &[u8] = b"\\u0000";

/// The dotted path of the first string (or object key) holding U+0000.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".into()
        } else {
            path.to_owned()
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, &join(&i.to_string()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(join(&k.replace('\0', "\\u0000")))
            } else {
                nul_path(v, &join(k))
            }
        }),
        _ => None,
    }
}

/// Refuses a body with U+0000 in any string, naming the field, before any
/// of it can reach SQL (PostgreSQL refuses the character in text).
fn refuse_nul(body: &[u8]) -> Result<(), ApiError> {
    if !body.windows(ESCAPED_NUL.len()).any(|w| w == ESCAPED_NUL) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Unparseable bodies are reported as such by the parser.
        return Ok(());
    };
    match nul_path(&value, "") {
        Some(field) => Err(ApiError::Validation(ValidationErrors::single(
            &field,
            "null_character",
            "text must not contain the NUL character (U+0000)",
        ))),
        None => Ok(()),
    }
}

/// Parses `body`, locating a type error at its field path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    refuse_nul(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => value,
        // Rare, so the fast path above stays a single pass.
        Err(e) if e.inner().to_string().starts_with(FLOAT_FOR_INTEGER) => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            return from_value(value);
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return match inner.classify() {
                serde_json::error::Category::Data => {
                    Err(ApiError::Validation(field_error(&path, &inner)))
                }
                // serde_json reports an enum given the wrong JSON type
                // (`{"role": null}`, `{"kind": 5}`) as a syntax error; if
                // the body is valid JSON it is a type error on the field.
                serde_json::error::Category::Syntax => {
                    match serde_json::from_slice::<serde_json::Value>(body) {
                        Ok(value) => from_value(value),
                        Err(_) => Err(ApiError::MalformedJson(inner.to_string())),
                    }
                }
                _ => Err(ApiError::MalformedJson(inner.to_string())),
            };
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// Distinguishes "absent" (`None`) from "null" (`Some(None)`) in a patch,
/// for fields where `null` means "clear".
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(de).map(Some)
}

/// An optional field that may be absent but not `null` (with
/// `#[serde(default)]`): in a patch, `null` would otherwise read as
/// "unchanged" for a field that cannot be cleared.
pub fn present<'de, T, D>(de: D) -> Result<Option<T>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(de).map(Some)
}

/// How serde starts the message for a float read where an integer is
/// expected.
const FLOAT_FOR_INTEGER: &str = "invalid type: floating point";

/// Converts an already parsed JSON value, with the same per-field errors
/// as [`parse_json`].
pub fn from_value<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    whole_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::Validation(field_error(&path, e.inner()))
    })
}

/// Rewrites every whole-valued float that fits an `i64` or `u64` (`3.0`,
/// `1e3`) as that integer. JSON does not tell the two apart, and JSON
/// Schema (so the OpenAPI document and the clients generated from it)
/// counts `3.0` as an integer; serde would refuse it where an integer is
/// expected. Fractions and out-of-range values stay floats and are refused
/// there.
fn whole_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::{Number, Value};
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 {
                // The casts saturate; the bounds make them exact.
                if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    *n = Number::from(f as i64);
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *n = Number::from(f as u64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// Turns serde's message into a per-field error. serde reports a missing or
/// unknown field at its parent's path, naming the field in backticks.
fn field_error(raw_path: &str, error: &serde_json::Error) -> ValidationErrors {
    // One notation for every field path: `items.0.quantity`, as the domain
    // rules write them, not serde's `items[0].quantity`.
    let dotted = raw_path.replace('[', ".").replace(']', "");
    // serde reads an object type from an array too, so a misplaced array
    // surfaces at `[0]`; for a client that is a wrong body, not a field.
    let path = if raw_path.starts_with('[') {
        "."
    } else {
        dotted.as_str()
    };
    let message = error.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    let named = message.split('`').nth(1).unwrap_or("");
    let join = |name: &str| match path {
        "." | "" => name.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    let root = |p: &str| {
        if p == "." {
            "body".to_owned()
        } else {
            p.to_owned()
        }
    };
    if message.starts_with("missing field") {
        ValidationErrors::single(&join(named), "required", "this field is required")
    } else if message.starts_with("unknown field") {
        // Unlike a missing field, an unknown one is already on the path.
        ValidationErrors::single(&root(path), "unknown_field", "this field is not accepted")
    } else if message.starts_with("invalid type") {
        ValidationErrors::single(&root(path), "invalid_type", message)
    } else {
        ValidationErrors::single(&root(path), "invalid", message)
    }
}

/// The authenticated caller. Missing credentials are 401 `not_authenticated`;
/// any token failure (malformed, bad signature, wrong algorithm, expired,
/// other audience, revoked, user inactive) is the same 401 `invalid_token`.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Principal);

/// Paths that ignore an `Authorization` header, as simplejwt's token views
/// do: a client refreshing because its access token expired may still send
/// that token.
const TOKEN_ENDPOINTS: [&str; 6] = [
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    "/api/v1/auth/verify-email",
];

/// The principal [`authenticate`] resolved for this request.
#[derive(Debug, Clone, Copy)]
struct ResolvedPrincipal(Principal);

/// The bearer token of an `Authorization` header.
fn bearer(header: &header::HeaderValue) -> Result<&str, ApiError> {
    let value = header.to_str().map_err(|_| ApiError::invalid_token())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(ApiError::invalid_token)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::invalid_token());
    }
    Ok(token.trim())
}

/// Resolves an API key: from auth's view when it holds it, else from the
/// auth actor (which records its use). An unknown, revoked or expired key
/// is the same 401 as a bad token.
async fn resolve_key(state: &AppState, secret: &str) -> Result<KeyGrant, ApiError> {
    let digest = api_keys::digest(secret);
    let key = format!("apikey:{}", hex::encode(&digest));
    let view = &state.actors.auth_view;
    let live = |grant: &KeyGrant| grant.expires_at.is_none_or(|at| at > chrono::Utc::now());
    if let Some(AuthEntry::ApiKey(grant)) = view.get(&key) {
        return if live(&grant) {
            Ok(grant)
        } else {
            Err(ApiError::invalid_token())
        };
    }
    let ticket = view.ticket();
    let grant = state
        .actors
        .auth
        .call(ResolveApiKey { digest })
        .await?
        .filter(live)
        .ok_or_else(ApiError::invalid_token)?;
    view.put(ticket, key, AuthEntry::ApiKey(grant));
    Ok(grant)
}

/// What a request's credentials stand for.
enum Caller {
    User(Principal),
    Key(KeyGrant),
}

/// Verifies a bearer token (a JWT, or an API key) and says who it is.
async fn resolve_caller(
    state: &AppState,
    header: &header::HeaderValue,
) -> Result<Caller, ApiError> {
    let token = bearer(header)?;
    if api_keys::is_api_key(token) {
        return Ok(Caller::Key(resolve_key(state, token).await?));
    }
    Ok(Caller::User(resolve(state, header).await?))
}

/// Verifies a bearer token and asks the auth actor who it belongs to (role,
/// activity and token version are checked against the database).
async fn resolve(state: &AppState, header: &header::HeaderValue) -> Result<Principal, ApiError> {
    let token = bearer(header)?;
    if api_keys::is_api_key(token) {
        // Keys are resolved by `authenticate`, per route; here (a token
        // route) they stand for nobody.
        return Err(ApiError::invalid_token());
    }
    let claims = state.keys.verify_access(token).map_err(|e| {
        if let TokenError::Invalid(why) = &e {
            tracing::debug!(why, "access token refused");
        }
        ApiError::invalid_token()
    })?;
    // Who the user is now, from auth's view when it holds them: coherent
    // with every write that changes it, so a revoked token is refused on
    // the next request here too.
    let view = &state.actors.auth_view;
    let key = access_key(claims.sub);
    if let Some(AuthEntry::Access {
        token_version,
        role,
        is_active,
    }) = view.get(&key)
    {
        if is_active && token_version == claims.ver {
            return Ok(Principal {
                user_id: claims.sub,
                role,
            });
        }
        return Err(ApiError::invalid_token());
    }
    let ticket = view.ticket();
    let principal = state
        .actors
        .auth
        .call(ResolvePrincipal {
            user_id: claims.sub,
            token_version: claims.ver,
        })
        .await?;
    view.put(
        ticket,
        key,
        AuthEntry::Access {
            token_version: claims.ver,
            role: principal.role,
            is_active: true,
        },
    );
    Ok(principal)
}

/// The auth view's key of a user's access.
fn access_key(user: uuid::Uuid) -> String {
    format!("access:{user}")
}

/// One rule for every API route: credentials that are sent are checked,
/// and refused ones are a 401, whether or not the route needs a user (a
/// bad token never downgrades silently to anonymous). Handlers then read
/// the principal through [`Authenticated`] or [`MaybeAuthenticated`]
/// without resolving it again.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let header = req.headers().get(header::AUTHORIZATION).cloned();
    if let Some(header) = header.filter(|_| !TOKEN_ENDPOINTS.contains(&req.path())) {
        let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
            let e = ApiError::Internal(anyhow::anyhow!("AppState missing"));
            return Ok(req.into_response(e.error_response()).map_into_right_body());
        };
        let resolved = match resolve_caller(&state, &header).await {
            Ok(Caller::User(principal)) => Ok(principal),
            Ok(Caller::Key(grant)) => admit_key(&state, &req, grant).await,
            Err(e) => Err(e),
        };
        match resolved {
            Ok(principal) => {
                req.extensions_mut().insert(ResolvedPrincipal(principal));
            }
            Err(e) => return Ok(req.into_response(e.error_response()).map_into_right_body()),
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Lets an API key through to a route its scopes cover, within its own
/// rate limit, as an admin principal whose id is the key's (so histories
/// name it); every other route is `403` for a key.
async fn admit_key(
    state: &AppState,
    req: &ServiceRequest,
    grant: KeyGrant,
) -> Result<Principal, ApiError> {
    let allowed = api_keys::required_scope(req.method().as_str(), req.path())
        .is_some_and(|scope| grant.scopes.has(scope));
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    let limits = &state.settings.rate_limit;
    let window = std::time::Duration::from_secs(limits.window_secs);
    if let Verdict::Limited { retry_after_secs } = state
        .rate_limiter
        .hit(
            "api_key",
            &grant.id.to_string(),
            limits.api_key_requests,
            window,
        )
        .await
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    Ok(Principal {
        user_id: grant.id,
        role: crate::domain::auth::Role::Admin,
    })
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(ResolvedPrincipal(principal)) = req.extensions().get().copied() {
            return Box::pin(async move { Ok(Authenticated(principal)) });
        }
        let state = req.app_data::<Data<AppState>>().cloned();
        let header = req.headers().get(header::AUTHORIZATION).cloned();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
            let header = header.ok_or(ApiError::NotAuthenticated)?;
            Ok(Authenticated(resolve(&state, &header).await?))
        })
    }
}

/// An authenticated admin; anyone else authenticated gets 403.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub Principal);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(principal) = user.await?;
            if principal.is_admin() {
                Ok(AdminUser(principal))
            } else {
                Err(ApiError::Forbidden)
            }
        })
    }
}

/// The caller if credentials were sent, `None` if not. Credentials that are
/// sent and refused are still a 401: a bad token never downgrades silently
/// to anonymous.
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuthenticated(pub Option<Principal>);

impl MaybeAuthenticated {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.0.is_some_and(|p| p.is_admin())
    }
}

impl FromRequest for MaybeAuthenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return Box::pin(async { Ok(MaybeAuthenticated(None)) });
        }
        let user = Authenticated::from_request(req, payload);
        Box::pin(async move { Ok(MaybeAuthenticated(Some(user.await?.0))) })
    }
}

/// Query parameters, decoded; the last value of a repeated key wins.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Decodes the request's query string.
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `prefix<rest>=value`, as `(rest, value)` in request order.
    pub fn prefixed(&self, prefix: &str) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
            .collect()
    }

    /// Parses a UUID into `errors` on failure.
    pub fn uuid_into(&self, key: &str, errors: &mut ValidationErrors) -> Option<uuid::Uuid> {
        let raw = self.get(key)?;
        match uuid::Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add(key, "invalid", format!("{key} must be a UUID"));
                None
            }
        }
    }

    /// Parses a `true`/`false` flag into `errors` on failure.
    pub fn bool(&self, key: &str, errors: &mut ValidationErrors) -> Option<bool> {
        match self.get(key)?.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                errors.add(key, "invalid", format!("{key} must be true or false"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        nested: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(result: Result<Body, ApiError>) -> (String, &'static str) {
        match result {
            Err(ApiError::Validation(e)) => (e.errors()[0].field.clone(), e.errors()[0].code),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        let body: Body = parse_json(br#"{"email":"a","nested":{"count":3.0}}"#).expect("3.0");
        assert_eq!(body.nested.map(|n| n.count), Some(3));
        let body: Body = parse_json(br#"{"email":"a","nested":{"count":1e2}}"#).expect("1e2");
        assert_eq!(body.nested.map(|n| n.count), Some(100));
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","nested":{"count":2.5}}"#)),
            ("nested.count".into(), "invalid_type")
        );
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","nested":{"count":1e30}}"#)),
            ("nested.count".into(), "invalid_type")
        );
        let value = serde_json::json!({"email": "a", "nested": {"count": 7.0}});
        let body: Body = from_value(value).expect("7.0");
        assert_eq!(body.nested.map(|n| n.count), Some(7));
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(field_of(parse_json(b"{}")), ("email".into(), "required"));
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","nested":{}}"#)),
            ("nested.count".into(), "required")
        );
    }

    #[test]
    fn wrong_types_are_located() {
        assert_eq!(
            field_of(parse_json(br#"{"email": 5}"#)),
            ("email".into(), "invalid_type")
        );
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","nested":{"count":-1}}"#)),
            ("nested.count".into(), "invalid")
        );
        assert_eq!(
            field_of(parse_json(b"\"text\"")),
            ("body".into(), "invalid_type")
        );
    }

    #[test]
    fn an_enum_of_the_wrong_json_type_is_a_type_error_on_its_field() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Role {
            Customer,
            Admin,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Patch {
            role: Role,
        }
        for body in [
            &br#"{"role": null}"#[..],
            br#"{"role": 5}"#,
            br#"{"role": []}"#,
        ] {
            match parse_json::<Patch>(body) {
                Err(ApiError::Validation(e)) => {
                    assert_eq!(e.errors()[0].field, "role");
                    assert_eq!(e.errors()[0].code, "invalid_type");
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        // Broken JSON stays malformed.
        assert!(matches!(
            parse_json::<Patch>(br#"{"role": "#),
            Err(ApiError::MalformedJson(_))
        ));
        let patch: Patch = parse_json(br#"{"role": "admin"}"#).expect("valid");
        assert!(matches!(patch.role, Role::Admin));
    }

    #[test]
    fn array_elements_are_named_with_dots() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Items {
            items: Vec<Inner>,
        }
        let r = parse_json::<Items>(br#"{"items": [{"count": 1}, {"count": "x"}]}"#);
        match r {
            Err(ApiError::Validation(e)) => assert_eq!(e.errors()[0].field, "items.1.count"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn nul_characters_are_refused_at_their_field() {
        assert_eq!(
            field_of(parse_json(br#"{"email":"a\u0000b"}"#)),
            ("email".into(), "null_character")
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Tags {
            tags: Vec<String>,
        }
        match parse_json::<Tags>(br#"{"tags": ["ok", "bad\u0000"]}"#) {
            Err(ApiError::Validation(e)) => assert_eq!(e.errors()[0].field, "tags.1"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        // An escaped backslash before "u0000" is plain text, not NUL.
        assert!(parse_json::<Body>(br#"{"email":"a\\u0000"}"#).is_ok());
    }

    #[test]
    fn unknown_fields_are_named_where_refused() {
        assert_eq!(
            field_of(parse_json(br#"{"email":"a","role":"admin"}"#)),
            ("role".into(), "unknown_field")
        );
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_malformed() {
        for body in [&b"{"[..], b"", b"{\"email\":\"a\"} x", b"nope"] {
            assert!(matches!(
                parse_json::<Body>(body),
                Err(ApiError::MalformedJson(_))
            ));
        }
    }
}

//! Page parameters from the query string and DRF-style absolute `next` and
//! `previous` links.

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpMessage as _, HttpRequest};

use super::error::ApiError;
use super::extract::QueryParams;
use super::middleware::TrailingSlash;
use super::state::AppState;
use crate::domain::pagination::{Page, PageRequest};
use utoipa::IntoParams;

/// `page` and `page_size` of every list, answered in the DRF envelope
/// (`count`, `next`, `previous`, `results`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the document only; handlers parse the raw query
pub struct PageParams {
    /// 1-based page number; a page past the last is a 404.
    #[param(minimum = 1, maximum = 4_294_967_295_u32)]
    page: Option<u32>,
    /// Rows per page (default 20); any larger value is capped at 100.
    #[param(minimum = 1)]
    page_size: Option<u64>,
}

/// Reads `page` and `page_size`; invalid values are a 400.
pub fn page_request(params: &QueryParams) -> Result<PageRequest, ApiError> {
    PageRequest::parse(params.get("page"), params.get("page_size")).map_err(ApiError::InvalidQuery)
}

/// The absolute `next` and `previous` links of a page, built from the
/// request's own query (page replaced). A page past the end is a 404, as in
/// DRF.
pub fn page_links(
    req: &HttpRequest,
    request: PageRequest,
    count: i64,
) -> Result<(Option<String>, Option<String>), ApiError> {
    if request.is_past_end(count) {
        return Err(ApiError::NotFound("page"));
    }
    let base = base_url(req);
    // The path as the client wrote it: `/products/` links to `/products/`.
    let slash = if req.extensions().get::<TrailingSlash>().is_some() {
        "/"
    } else {
        ""
    };
    let link = |page: u32| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            if k != "page" {
                query.append_pair(&k, &v);
            }
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        let sep = if query.is_empty() { "" } else { "?" };
        format!("{base}{}{slash}{sep}{query}", req.path())
    };
    Ok((
        request.has_next(count).then(|| link(request.page + 1)),
        (request.page > 1).then(|| link(request.page - 1)),
    ))
}

/// Scheme and authority of absolute links: the configured public base URL;
/// else what the request says, reading `Forwarded`/`X-Forwarded-*` only
/// behind a trusted proxy and accepting a `Host` only if it is a plain
/// host name or address, so a client cannot point links elsewhere.
pub fn base_url(req: &HttpRequest) -> String {
    let settings = req.app_data::<Data<AppState>>().map(|s| &s.settings.http);
    if let Some(base) = settings.and_then(|h| h.public_base_url.as_deref()) {
        if !base.is_empty() {
            return base.trim_end_matches('/').to_owned();
        }
    }
    let fallback = req.app_config().host().to_owned();
    if settings.is_some_and(|h| h.trust_forwarded_for) {
        let info = req.connection_info();
        let host = plain_authority(info.host()).unwrap_or(fallback);
        let scheme = if info.scheme() == "https" {
            "https"
        } else {
            "http"
        };
        return format!("{scheme}://{host}");
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(plain_authority)
        .unwrap_or(fallback);
    format!("{scheme}://{host}")
}

/// `host[:port]` with nothing else in it (no user info, path or scheme).
fn plain_authority(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    let parsed = url::Url::parse(&format!("http://{raw}/")).ok()?;
    (ok && parsed.host_str().is_some() && parsed.path() == "/").then(|| raw.to_owned())
}

/// Wraps `results` in DRF's envelope.
pub fn page<T>(
    req: &HttpRequest,
    request: PageRequest,
    count: i64,
    results: Vec<T>,
) -> Result<Page<T>, ApiError> {
    let (next, previous) = page_links(req, request, count)?;
    Ok(Page {
        count,
        next,
        previous,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::plain_authority;

    #[test]
    fn only_plain_hosts_are_reflected() {
        assert_eq!(
            plain_authority("shop.example:8000").as_deref(),
            Some("shop.example:8000")
        );
        assert_eq!(plain_authority("[::1]:80").as_deref(), Some("[::1]:80"));
        assert!(plain_authority("javascript://evil.example/x").is_none());
        assert!(plain_authority("user@evil.example").is_none());
        assert!(plain_authority("evil.example/path").is_none());
        assert!(plain_authority("").is_none());
    }
}

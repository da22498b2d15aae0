//! Page parameters from the query string and DRF-style absolute `next` and
//! `previous` links.

use actix_web::HttpRequest;

use super::error::ApiError;
use super::extract::QueryParams;
use crate::domain::pagination::{Page, PageRequest};

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
    let link = |page: u32| {
        let info = req.connection_info();
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
        format!(
            "{}://{}{}{sep}{query}",
            info.scheme(),
            info.host(),
            req.path()
        )
    };
    Ok((
        request.has_next(count).then(|| link(request.page + 1)),
        (request.page > 1).then(|| link(request.page - 1)),
    ))
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

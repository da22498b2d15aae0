//! Pre-compressed bodies for clients that accept them: the read view keeps
//! a gzip copy of each large page, made once when the page is filled, so a
//! hit costs no compression and a fraction of the bytes.

use std::io::Write as _;

use actix_web::http::header;
use actix_web::HttpRequest;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Bodies smaller than this are sent as they are: gzip would save little
/// and its header costs bytes.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

/// `body` gzipped at the fastest level, when it is worth it.
pub fn gzip(body: &[u8]) -> Option<Bytes> {
    if body.len() < MIN_COMPRESSED_BYTES {
        return None;
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Whether the request's `Accept-Encoding` takes gzip.
pub fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip_header)
}

/// Whether one `Accept-Encoding` value takes gzip: `gzip` or `*` with a
/// non-zero quality (RFC 9110 §12.5.3).
pub fn accepts_gzip_header(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
            return false;
        }
        parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read as _;

    #[test]
    fn reads_accept_encoding() {
        assert!(accepts_gzip_header("gzip"));
        assert!(accepts_gzip_header("br, GZIP;q=0.5"));
        assert!(accepts_gzip_header("deflate, *"));
        assert!(!accepts_gzip_header("gzip;q=0"));
        assert!(!accepts_gzip_header("gzip;q=0.0, br"));
        assert!(!accepts_gzip_header("identity"));
        assert!(!accepts_gzip_header(""));
        assert!(!accepts_gzip_header("x-gzip-ish"));
    }

    #[test]
    fn compresses_large_bodies_only_and_round_trips() {
        assert_eq!(gzip(b"{}"), None);
        let body = br#"{"name":"tee"}"#.repeat(200);
        let packed = gzip(&body).expect("compressed");
        assert!(packed.len() < body.len() / 4);
        let mut out = Vec::new();
        GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .expect("gzip");
        assert_eq!(out, body);
    }
}

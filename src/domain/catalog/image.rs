//! Product image rules: which files are images (by their first bytes, not
//! their name), where one is kept, and the fields an admin can change.

use uuid::Uuid;

use crate::domain::validation::ValidationErrors;

/// Longest alternative text.
pub const MAX_ALT_CHARS: usize = 500;
/// Most images on one product.
pub const MAX_IMAGES: usize = 50;
/// Widest or tallest image accepted, in pixels (decoding a larger one
/// would cost more memory than an upload should).
pub const MAX_DIMENSION: u32 = 12_000;

/// An accepted image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    WebP,
    Gif,
}

impl ImageKind {
    /// The format `bytes` start with, if it is one of the four accepted.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else {
            None
        }
    }

    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    /// The file extension of its key.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::WebP => "webp",
            Self::Gif => "gif",
        }
    }

    /// The kind a key's extension names.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension {
            "png" => Some(Self::Png),
            "jpg" => Some(Self::Jpeg),
            "webp" => Some(Self::WebP),
            "gif" => Some(Self::Gif),
            _ => None,
        }
    }
}

/// Why an upload is not an image this shop takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRefusal {
    /// Not PNG, JPEG, WebP or GIF by its first bytes (whatever its name).
    UnsupportedType,
    /// It starts as one but does not decode (truncated, corrupt).
    Undecodable(String),
    /// Wider or taller than [`MAX_DIMENSION`].
    TooLarge { width: u32, height: u32 },
}

impl ImageRefusal {
    /// The refusal as a field error on `file`.
    pub fn into_errors(self) -> ValidationErrors {
        match self {
            Self::UnsupportedType => ValidationErrors::single(
                "file",
                "unsupported_type",
                "the file is not a PNG, JPEG, WebP or GIF image (recognised by its content, not its name)",
            ),
            Self::Undecodable(why) => ValidationErrors::single(
                "file",
                "undecodable",
                format!("the image does not decode: {why}"),
            ),
            Self::TooLarge { width, height } => ValidationErrors::single(
                "file",
                "too_large",
                format!("{width}×{height} pixels; at most {MAX_DIMENSION} on each side"),
            ),
        }
    }
}

/// The kind and dimensions of an uploaded image, decoded in full (a file
/// whose header parses but whose data is cut short is refused), within
/// limits on dimensions and memory so a small file cannot ask for a huge
/// canvas. CPU-heavy: run it off the actor's thread.
pub fn inspect(bytes: &[u8]) -> Result<(ImageKind, u32, u32), ImageRefusal> {
    let kind = ImageKind::sniff(bytes).ok_or(ImageRefusal::UnsupportedType)?;
    let format = match kind {
        ImageKind::Png => image::ImageFormat::Png,
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::WebP => image::ImageFormat::WebP,
        ImageKind::Gif => image::ImageFormat::Gif,
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageRefusal::TooLarge {
            width: MAX_DIMENSION + 1,
            height: MAX_DIMENSION + 1,
        },
        other => ImageRefusal::Undecodable(other.to_string()),
    })?;
    Ok((kind, decoded.width(), decoded.height()))
}

/// Where an image's file is kept: one key per content, so a key's bytes
/// never change and clients may cache them for good.
pub fn media_key(product: Uuid, image: Uuid, digest_hex: &str, kind: ImageKind) -> String {
    let short = &digest_hex[..digest_hex.len().min(16)];
    format!("products/{product}/{image}-{short}.{}", kind.extension())
}

/// A key as the media route receives it: its kind and its entity tag
/// (the digest part), when it has the form [`media_key`] makes.
pub fn parse_media_key(key: &str) -> Option<(ImageKind, &str)> {
    let mut parts = key.split('/');
    let (Some("products"), Some(product), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Uuid::parse_str(product).ok()?;
    let (stem, extension) = file.rsplit_once('.')?;
    let kind = ImageKind::from_extension(extension)?;
    let (image, digest) = stem.rsplit_once('-')?;
    Uuid::parse_str(image).ok()?;
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((kind, digest))
}

/// Trims and checks an alternative text.
pub fn check_alt(errors: &mut ValidationErrors, alt: &str) -> String {
    let alt = alt.trim().to_owned();
    if alt.chars().count() > MAX_ALT_CHARS {
        errors.add(
            "alt",
            "too_long",
            format!("alt must have at most {MAX_ALT_CHARS} characters"),
        );
    }
    alt
}

/// Records an error unless every one of `chosen` is among `variants`.
pub fn check_variant_ids(errors: &mut ValidationErrors, chosen: &[Uuid], variants: &[Uuid]) {
    if let Some(stranger) = chosen.iter().find(|id| !variants.contains(id)) {
        errors.add(
            "variant_ids",
            "unknown",
            format!("{stranger} is not a variant of this product"),
        );
    }
}

/// A change to an image: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ImagePatch {
    pub alt: Option<String>,
    pub position: Option<i64>,
    pub variant_ids: Option<Vec<Uuid>>,
}

impl ImagePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.alt.is_none() && self.position.is_none() && self.variant_ids.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageKind::Png)
        );
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageKind::WebP)
        );
        assert_eq!(ImageKind::sniff(b"GIF89a.."), Some(ImageKind::Gif));
        assert_eq!(ImageKind::sniff(b"just some text named photo.png"), None);
        assert_eq!(ImageKind::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(ImageKind::sniff(b""), None);
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encoded");
        out
    }

    #[test]
    fn an_image_is_decoded_whole_and_a_cut_or_renamed_file_is_not() {
        assert_eq!(inspect(&png(3, 2)), Ok((ImageKind::Png, 3, 2)));
        let full = png(40, 40);
        let cut = &full[..full.len() / 2];
        assert!(matches!(inspect(cut), Err(ImageRefusal::Undecodable(_))));
        assert_eq!(
            inspect(b"hello, I am text"),
            Err(ImageRefusal::UnsupportedType)
        );
        let codes: Vec<_> = ImageRefusal::UnsupportedType
            .into_errors()
            .errors()
            .iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, ["unsupported_type"]);
    }

    #[test]
    fn a_key_names_its_kind_and_digest_and_nothing_else_parses() {
        let (p, i) = (Uuid::new_v4(), Uuid::new_v4());
        let key = media_key(p, i, "ab12cd34ef56ab78cd90", ImageKind::WebP);
        assert!(key.ends_with("-ab12cd34ef56ab78.webp"), "{key}");
        assert_eq!(
            parse_media_key(&key),
            Some((ImageKind::WebP, "ab12cd34ef56ab78"))
        );
        for bad in [
            "products/../etc/passwd",
            "products/x/y-ab.png",
            &format!("products/{p}/{i}-ab.exe"),
            &format!("products/{p}/{i}-zz.png"),
            &format!("products/{p}/{i}-ab.png/more"),
            &format!("other/{p}/{i}-ab.png"),
        ] {
            assert_eq!(parse_media_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn alt_texts_and_variant_ids_are_checked() {
        let mut e = ValidationErrors::new();
        assert_eq!(check_alt(&mut e, "  a red tee "), "a red tee");
        check_alt(&mut e, &"x".repeat(MAX_ALT_CHARS + 1));
        let known = [Uuid::from_u128(1)];
        check_variant_ids(&mut e, &known, &known);
        check_variant_ids(&mut e, &[Uuid::from_u128(2)], &known);
        let codes: Vec<_> = e
            .errors()
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(codes, [("alt", "too_long"), ("variant_ids", "unknown")]);
    }
}

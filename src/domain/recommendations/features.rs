//! Content features of a product as weighted tokens: its category path with
//! every ancestor (deeper levels weigh more), its tags, and its price band
//! (powers of two of the price in major units).

use super::data::Features;

/// Weight of a tag.
const TAG: f32 = 1.0;
/// Weight of the price band.
const PRICE: f32 = 1.0;

/// The tokens of a product. `path` is its category path from the root
/// (slugs or any names), `price_minor` its price in minor units.
pub fn product_features(path: &[String], tags: &[String], price_minor: Option<i64>) -> Features {
    let mut out = Vec::new();
    let mut prefix = String::new();
    for (depth, part) in path.iter().enumerate() {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        out.push((format!("cat:{prefix}"), 1.0 + depth as f32));
    }
    for tag in tags {
        out.push((format!("tag:{}", tag.to_lowercase()), TAG));
    }
    if let Some(price) = price_minor.filter(|p| *p > 0) {
        let band = ((price as f64) / 100.0).max(1.0).log2().floor() as i64;
        out.push((format!("price:{band}"), PRICE));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_tags_and_price_bands_become_tokens() {
        let f = product_features(
            &["outdoor".into(), "tents".into()],
            &["Premium".into()],
            Some(25_000),
        );
        assert_eq!(
            f,
            vec![
                ("cat:outdoor".into(), 1.0),
                ("cat:outdoor/tents".into(), 2.0),
                ("tag:premium".into(), 1.0),
                ("price:7".into(), 1.0),
            ]
        );
        assert!(product_features(&[], &[], None).is_empty());
    }
}

//! The promotion gate: a new build is served only if it beats the
//! popularity baseline and does not trail the live model by more than a
//! tolerance, both on the same held-out purchases.

/// Decides on a build with blend recall `candidate` and popularity recall
/// `baseline`, given the live model's blend recall (if any). `Err` says why
/// the build is refused.
pub fn promote(
    candidate: f64,
    baseline: f64,
    live: Option<f64>,
    tolerance: f64,
    k: usize,
) -> Result<(), String> {
    if candidate < baseline {
        return Err(format!(
            "blend recall@{k} {candidate:.4} is below the popularity baseline {baseline:.4}"
        ));
    }
    if let Some(live) = live.filter(|live| candidate + tolerance < *live) {
        return Err(format!(
            "blend recall@{k} {candidate:.4} trails the live model's {live:.4} by more than {tolerance}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_worse_than_popularity_or_the_live_model_is_refused() {
        assert!(promote(0.02, 0.05, None, 0.02, 10)
            .expect_err("refused")
            .contains("popularity"));
        assert!(promote(0.10, 0.05, Some(0.20), 0.02, 10)
            .expect_err("refused")
            .contains("live"));
        assert_eq!(promote(0.19, 0.05, Some(0.20), 0.02, 10), Ok(()));
        assert_eq!(promote(0.10, 0.05, None, 0.02, 10), Ok(()));
        // No held-out users yet: nothing to lose against.
        assert_eq!(promote(0.0, 0.0, None, 0.02, 10), Ok(()));
    }
}

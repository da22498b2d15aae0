//! Category rules: fields, and keeping the tree a tree.

use uuid::Uuid;

use super::text::{check_slug, required_text, slugify};
use crate::domain::validation::ValidationErrors;

/// Longest category name.
pub const MAX_CATEGORY_NAME_CHARS: usize = 100;

/// A category's fields, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryFields {
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

/// Validates a category; a missing slug is made from the name.
pub fn validate_category(
    name: &str,
    slug: Option<&str>,
    parent_id: Option<Uuid>,
) -> Result<CategoryFields, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let name = required_text(&mut errors, "name", name, MAX_CATEGORY_NAME_CHARS);
    let slug = match slug {
        Some(slug) => slug.trim().to_owned(),
        None => slugify(&name),
    };
    // A slug derived from a blank name is not a second problem to report.
    if !(slug.is_empty() && name.is_empty()) {
        check_slug(&mut errors, "slug", &slug);
    }
    errors.into_result()?;
    Ok(CategoryFields {
        name,
        slug,
        parent_id,
    })
}

/// Whether making `new_parent` the parent of `category` would close a loop.
/// `parent_lineage` is `new_parent` followed by all its ancestors.
pub fn creates_cycle(category: Uuid, parent_lineage: &[Uuid]) -> bool {
    parent_lineage.contains(&category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_slug_comes_from_the_name() {
        let c = validate_category(" Running Shoes ", None, None).expect("valid");
        assert_eq!(c.name, "Running Shoes");
        assert_eq!(c.slug, "running-shoes");
    }

    #[test]
    fn bad_fields_are_reported_together() {
        let e = validate_category("", Some("Bad Slug"), None).expect_err("invalid");
        let fields: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "slug"]);
    }

    #[test]
    fn a_category_cannot_sit_under_itself_or_its_descendants() {
        let (root, child, grandchild, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        // Moving root under grandchild: grandchild's lineage is [grandchild, child, root].
        assert!(creates_cycle(root, &[grandchild, child, root]));
        assert!(creates_cycle(root, &[root]));
        assert!(!creates_cycle(other, &[grandchild, child, root]));
    }
}

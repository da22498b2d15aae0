//! The item of a cart or order request: a variant, or a product that has
//! one variant (so clients from before variants keep working).

use uuid::Uuid;

use crate::domain::validation::ValidationErrors;

/// Which variant a request line names, and with which field: `variant_id`
/// when given, else `product_id` (which must then have one variant). Both
/// at once is refused, as is neither; `at` is the line's field path prefix
/// (e.g. `items.2.`).
pub fn named_item(
    errors: &mut ValidationErrors,
    at: &str,
    product_id: Option<Uuid>,
    variant_id: Option<Uuid>,
) -> (Uuid, bool) {
    match (product_id, variant_id) {
        (None, Some(variant)) => (variant, true),
        (Some(product), None) => (product, false),
        (None, None) => {
            // Named as before variants, for the clients that send it.
            errors.add(
                &format!("{at}product_id"),
                "required",
                "name the variant (variant_id), or a product with one variant (product_id)",
            );
            (Uuid::nil(), false)
        }
        (Some(_), Some(variant)) => {
            errors.add(
                &format!("{at}product_id"),
                "conflict",
                "give variant_id or product_id, not both",
            );
            (variant, true)
        }
    }
}

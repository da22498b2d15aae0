//! The catalog's rules: what a valid category and product are, how product
//! listings are filtered and keyed, and how stock reservations are checked.

pub mod allocation;
pub mod category;
pub mod demo;
pub mod facets;
pub mod image;
pub mod listing;
pub mod listing_index;
pub mod location;
pub mod product;
pub mod stock;
pub mod text;
pub mod variant;

//! Integration tests: each test starts a whole Emporium instance on a random
//! port with its own databases, and talks HTTP to it.

mod addresses;
mod admin_users;
mod carts;
mod catalog_cache;
mod catalog_categories;
mod catalog_facets;
mod catalog_images;
mod catalog_listing;
mod catalog_products;
mod catalog_stock;
mod catalog_variants;
mod catalog_view;
mod checkout;
mod db_proxy;
mod deploy;
mod edge;
mod hardening;
mod helpers;
mod layering;
mod login;
mod metrics;
mod openapi;
mod order_recovery;
mod orders;
mod outages;
mod payment_hardening;
mod payments;
mod recommendations;
mod register;
mod replicas;
mod revocation;
mod runtime;
mod seed_demo;
mod tokens;
mod variant_migration;

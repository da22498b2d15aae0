-- Shipping and tax are priced from the catalog's variant snapshots, so the
-- catalog records what they need.

-- The product's tax-class code. Classes and their rates live in the orders
-- database, so this is not a foreign key: a class that is not defined there
-- is charged at no rate. Existing products are taxed at the standard rate.
ALTER TABLE products ADD COLUMN tax_class text NOT NULL DEFAULT 'standard';
-- Whether a variant is shipped: `false` for digital goods and services,
-- which add no weight and need no shipping method. Existing variants are
-- physical goods.
ALTER TABLE product_variants ADD COLUMN requires_shipping boolean NOT NULL DEFAULT true;

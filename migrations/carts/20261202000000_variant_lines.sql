-- A cart line holds a product variant. A default variant's id is its
-- product's id, so every existing line keeps naming the same unit.
ALTER TABLE cart_items RENAME COLUMN product_id TO variant_id;

-- Order lines snapshot the variant sold: its id, SKU and option values.
-- Lines written before variants existed sold their product's default
-- variant, whose id is the product's; their SKU was not recorded (NULL).
ALTER TABLE order_items ADD COLUMN variant_id uuid;
UPDATE order_items SET variant_id = product_id;
ALTER TABLE order_items ALTER COLUMN variant_id SET NOT NULL;
ALTER TABLE order_items ADD COLUMN sku text;
ALTER TABLE order_items ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
-- Two variants of one product are two lines of one order.
ALTER TABLE order_items DROP CONSTRAINT order_items_product_key;
ALTER TABLE order_items ADD CONSTRAINT order_items_variant_key UNIQUE (order_id, variant_id);

-- Products gain options and variants: the variant is what is priced,
-- stocked, reserved and ordered. Every existing product becomes a product
-- with one default variant (no options) whose id is the product's id, so
-- held reservations, cart lines and order lines that name a product id keep
-- naming the same sellable unit.

-- The product's options, `[{"name": "size", "values": ["S", "M"]}]`, in
-- display order (validated by the application: 0-3 options).
ALTER TABLE products ADD COLUMN options jsonb NOT NULL DEFAULT '[]';
-- Every option value some active variant has, as `name || chr(31) ||
-- value`, kept with the product's totals: option filters and facets read
-- it like tags (GIN index, `&&`, unnest) instead of every variant's jsonb.
ALTER TABLE products ADD COLUMN option_values text[] NOT NULL DEFAULT '{}';
CREATE INDEX products_option_values_idx ON products USING gin (option_values);

CREATE TABLE product_variants (
    id               uuid        PRIMARY KEY,
    product_id       uuid        NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    sku              text        NOT NULL,
    -- One value of each of the product's options, `{"size": "M"}`; `{}` for
    -- the default variant of a product without options.
    options          jsonb       NOT NULL DEFAULT '{}',
    price            bigint      NOT NULL,
    compare_at_price bigint,
    stock            integer     NOT NULL,
    weight_grams     integer     NOT NULL DEFAULT 0,
    is_active        boolean     NOT NULL DEFAULT true,
    position         integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_variants_sku_key UNIQUE (sku),
    -- jsonb equality ignores key order, so this is "one variant per
    -- combination of option values".
    CONSTRAINT product_variants_options_key UNIQUE (product_id, options),
    CONSTRAINT product_variants_price_check CHECK (price >= 0),
    CONSTRAINT product_variants_compare_at_check CHECK (compare_at_price IS NULL OR compare_at_price >= 0),
    CONSTRAINT product_variants_stock_check CHECK (stock >= 0),
    CONSTRAINT product_variants_weight_check CHECK (weight_grams >= 0)
);

CREATE INDEX product_variants_product_idx ON product_variants (product_id, position, id);

INSERT INTO product_variants (id, product_id, sku, options, price, stock, is_active, position, created_at, updated_at)
SELECT id, id, sku, '{}', price, stock, true, 0, created_at, updated_at FROM products;

-- The product's `sku`, `price` and `stock` are now kept by the application
-- as its default variant's SKU (NULL when it has options), its lowest active
-- variant price and its active variants' stock total, so listings keep
-- filtering and ordering on indexed product columns. SKUs are unique on the
-- variants.
ALTER TABLE products ALTER COLUMN sku DROP NOT NULL;
ALTER TABLE products DROP CONSTRAINT products_sku_key;

-- Reservations hold variants. The ids are unchanged (a default variant's id
-- is its product's), only the column's meaning and its foreign key move.
ALTER TABLE reservation_items RENAME COLUMN product_id TO variant_id;
ALTER TABLE reservation_items DROP CONSTRAINT reservation_items_product_id_fkey;
ALTER TABLE reservation_items ADD CONSTRAINT reservation_items_variant_id_fkey
    FOREIGN KEY (variant_id) REFERENCES product_variants (id) ON DELETE RESTRICT;
ALTER INDEX reservation_items_product_id_idx RENAME TO reservation_items_variant_id_idx;

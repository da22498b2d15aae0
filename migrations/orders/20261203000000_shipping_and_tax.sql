-- Shipping and tax. The orders domain owns the rules because it is the one
-- that charges: checkout and `POST /orders/` price from these tables, and
-- the cart's view asks orders for the same rules, so a quote shown is the
-- quote charged.

CREATE TABLE tax_classes (
    code       text        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tax_classes_code_check CHECK (code ~ '^[a-z0-9_-]{1,50}$')
);
INSERT INTO tax_classes (code, name) VALUES
    ('standard', 'Standard rate'), ('reduced', 'Reduced rate'), ('zero', 'Zero rate');

CREATE TABLE tax_rates (
    id         uuid        PRIMARY KEY,
    tax_class  text        NOT NULL REFERENCES tax_classes (code) ON DELETE CASCADE,
    country    text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    -- A region of the country (a US state); NULL for the whole country.
    region     text,
    rate_bp    integer     NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One rate per class and place; a country-wide rate has region NULL.
CREATE UNIQUE INDEX tax_rates_place_key ON tax_rates (tax_class, country, coalesce(region, ''));

CREATE TABLE shipping_zones (
    id                   uuid        PRIMARY KEY,
    name                 text        NOT NULL,
    countries            text[]      NOT NULL,
    postal_code_prefixes text[]      NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipping_methods (
    id         uuid        PRIMARY KEY,
    zone_id    uuid        NOT NULL REFERENCES shipping_zones (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    carrier    text,
    currency   text        NOT NULL,
    -- `{"kind": "flat", "amount": 490}` and the banded kinds, validated by
    -- the application (domain::pricing::shipping::Rate).
    rate       jsonb       NOT NULL,
    free_over  bigint      CHECK (free_over >= 0),
    min_days   integer     CHECK (min_days >= 0),
    max_days   integer     CHECK (max_days >= 0),
    -- A tax-class code; not a foreign key, so deleting a class leaves the
    -- method taxed at no rate rather than deleting it.
    tax_class  text        NOT NULL DEFAULT 'standard',
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shipping_methods_days_check CHECK (min_days IS NULL OR max_days IS NULL OR min_days <= max_days)
);
CREATE INDEX shipping_methods_zone_idx ON shipping_methods (zone_id);

-- Orders carry shipping and tax. `prices_include_tax` records the shop's
-- mode when the order was placed, so the total's rule holds for every row
-- whatever the setting is today.
ALTER TABLE orders
    ADD COLUMN shipping bigint NOT NULL DEFAULT 0 CHECK (shipping >= 0),
    ADD COLUMN tax bigint NOT NULL DEFAULT 0 CHECK (tax >= 0),
    ADD COLUMN shipping_tax bigint NOT NULL DEFAULT 0 CHECK (shipping_tax >= 0 AND shipping_tax <= tax),
    ADD COLUMN prices_include_tax boolean NOT NULL DEFAULT false,
    -- The method as charged: id, name, carrier, days, tax rate.
    ADD COLUMN shipping_method jsonb,
    DROP CONSTRAINT orders_total_after_discount,
    ADD CONSTRAINT orders_total_adds_up CHECK (
        total = subtotal - discount + shipping + CASE WHEN prices_include_tax THEN 0 ELSE tax END);

ALTER TABLE order_items
    ADD COLUMN tax_rate_bp integer NOT NULL DEFAULT 0 CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN tax bigint NOT NULL DEFAULT 0 CHECK (tax >= 0);

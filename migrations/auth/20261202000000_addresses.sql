-- Each customer's address book. At most one default shipping and one
-- default billing address per user, enforced here (partial unique
-- indexes), so two requests racing to set a default cannot both win; the
-- 20-address limit is checked under a lock on the user's row.
CREATE TABLE addresses (
    id                  uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                text        NOT NULL,
    line1               text        NOT NULL,
    line2               text        NOT NULL DEFAULT '',
    city                text        NOT NULL,
    region              text        NOT NULL DEFAULT '',
    postal_code         text        NOT NULL,
    country             text        NOT NULL,
    phone               text        NOT NULL DEFAULT '',
    is_default_shipping boolean     NOT NULL DEFAULT false,
    is_default_billing  boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT addresses_country_check CHECK (country ~ '^[A-Z]{2}$')
);

CREATE INDEX addresses_user_idx ON addresses (user_id, created_at, id);
CREATE UNIQUE INDEX addresses_default_shipping_key ON addresses (user_id) WHERE is_default_shipping;
CREATE UNIQUE INDEX addresses_default_billing_key ON addresses (user_id) WHERE is_default_billing;

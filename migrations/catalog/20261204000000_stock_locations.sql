-- Stock is held per (variant, location), and every change to it is a row
-- of an append-only ledger. `product_variants.stock` stays as the
-- variant's available stock (Σ on_hand − Σ held over active locations),
-- rewritten from the levels in the same transaction as every change, so
-- listings, filters and the cart keep reading one indexed column.

CREATE TABLE stock_locations (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    -- ISO 3166-1 alpha-2, where the parcel ships from.
    country    text        NOT NULL,
    -- Higher first: reservations take from the highest-priority active
    -- location that covers a whole line, else split in this order.
    priority   integer     NOT NULL DEFAULT 0,
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_locations_name_key UNIQUE (name),
    CONSTRAINT stock_locations_country_check CHECK (country ~ '^[A-Z]{2}$')
);

CREATE TABLE stock_levels (
    variant_id  uuid        NOT NULL REFERENCES product_variants (id) ON DELETE CASCADE,
    location_id uuid        NOT NULL REFERENCES stock_locations (id) ON DELETE CASCADE,
    -- Units physically at the location, sold or not.
    on_hand     integer     NOT NULL,
    -- Units of `on_hand` that held reservations have taken.
    held        integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (variant_id, location_id),
    CONSTRAINT stock_levels_on_hand_check CHECK (on_hand >= 0),
    CONSTRAINT stock_levels_held_check CHECK (held >= 0 AND held <= on_hand)
);

CREATE INDEX stock_levels_location_idx ON stock_levels (location_id);

-- The ledger. For every level, on_hand = Σ on_hand_delta and held =
-- Σ held_delta of its movements. The variant is not a foreign key: the
-- history outlives a deleted variant. A location with history cannot be
-- deleted (deactivate it instead).
CREATE TABLE stock_movements (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    variant_id     uuid        NOT NULL,
    location_id    uuid        NOT NULL REFERENCES stock_locations (id) ON DELETE RESTRICT,
    kind           text        NOT NULL,
    on_hand_delta  integer     NOT NULL,
    held_delta     integer     NOT NULL,
    -- What caused it: a reservation (an order's reservation id is the
    -- order's id) or an admin (NULL for seed data and the migration).
    reservation_id uuid,
    admin_id       uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_movements_kind_check CHECK (
        (kind = 'adjustment' AND held_delta = 0 AND on_hand_delta <> 0)
        OR (kind = 'reservation' AND on_hand_delta = 0 AND held_delta > 0)
        OR (kind = 'release' AND on_hand_delta = 0 AND held_delta < 0)
        OR (kind = 'sale' AND on_hand_delta < 0 AND held_delta = on_hand_delta)
        OR (kind = 'return' AND on_hand_delta > 0 AND held_delta = 0))
);

CREATE INDEX stock_movements_variant_idx ON stock_movements (variant_id, id);
CREATE INDEX stock_movements_location_idx ON stock_movements (location_id, id);

CREATE FUNCTION stock_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stock_movements is append-only';
END $$;

CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements
    FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only();

-- Which locations each line of a reservation took from; releasing or
-- selling it touches exactly these.
CREATE TABLE reservation_allocations (
    reservation_id uuid    NOT NULL,
    variant_id     uuid    NOT NULL,
    location_id    uuid    NOT NULL REFERENCES stock_locations (id) ON DELETE RESTRICT,
    quantity       integer NOT NULL,
    PRIMARY KEY (reservation_id, variant_id, location_id),
    FOREIGN KEY (reservation_id, variant_id)
        REFERENCES reservation_items (reservation_id, variant_id) ON DELETE CASCADE,
    CONSTRAINT reservation_allocations_quantity_check CHECK (quantity > 0)
);

-- Everything stocked so far was in one place: the main warehouse, where
-- `stock` writes of the product and variant endpoints keep going while it
-- is the highest-priority active location. Rename or re-rank it at will.
INSERT INTO stock_locations (id, name, country, priority)
VALUES ('00000000-0000-4000-8000-000000000001', 'Main warehouse', 'US', 0);

-- Its levels: what is available plus what held reservations took.
INSERT INTO stock_levels (variant_id, location_id, on_hand, held)
SELECT v.id, '00000000-0000-4000-8000-000000000001',
       v.stock + coalesce(h.quantity, 0), coalesce(h.quantity, 0)
FROM product_variants v
LEFT JOIN (SELECT i.variant_id, sum(i.quantity)::int AS quantity
           FROM reservation_items i JOIN reservations r ON r.id = i.reservation_id
           WHERE r.status = 'held' GROUP BY i.variant_id) h ON h.variant_id = v.id
WHERE v.stock + coalesce(h.quantity, 0) > 0;

-- The ledger's opening rows: one adjustment per level, one reservation per
-- held line.
INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta)
SELECT variant_id, location_id, 'adjustment', on_hand, 0 FROM stock_levels;

INSERT INTO reservation_allocations (reservation_id, variant_id, location_id, quantity)
SELECT i.reservation_id, i.variant_id, '00000000-0000-4000-8000-000000000001', i.quantity
FROM reservation_items i JOIN reservations r ON r.id = i.reservation_id
WHERE r.status = 'held';

INSERT INTO stock_movements (variant_id, location_id, kind, on_hand_delta, held_delta, reservation_id)
SELECT variant_id, location_id, 'reservation', 0, quantity, reservation_id FROM reservation_allocations;

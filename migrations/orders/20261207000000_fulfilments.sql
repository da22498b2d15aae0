-- Fulfilments: an order ships in parcels. Each fulfilment takes some units
-- of some lines from one stock location; it is `pending` (being packed),
-- then `shipped` (its units leave the shelves: the catalog writes the sale
-- movements) and `delivered`, or `cancelled` before it ships. The order's
-- status follows from how many of its units have shipped.

-- Lines get an id of their own, which fulfilments, refunds and returns
-- name. Existing lines get a random one.
ALTER TABLE order_items ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE order_items ADD CONSTRAINT order_items_id_key UNIQUE (id);

-- Units of the line in fulfilments that are not cancelled. The CHECK is
-- the last guard against fulfilling more than was ordered: two concurrent
-- fulfilments cannot both pass it.
ALTER TABLE order_items
    ADD COLUMN fulfilled_quantity integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT order_items_fulfilled_check
        CHECK (fulfilled_quantity >= 0 AND fulfilled_quantity <= quantity);

CREATE TABLE fulfilments (
    id               uuid        PRIMARY KEY,
    order_id         uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'pending',
    -- The catalog's stock location the parcel ships from (not a foreign
    -- key: it lives in another database). NULL for orders shipped before
    -- fulfilments existed, whose location was not recorded.
    location_id      uuid,
    carrier          text,
    tracking_number  text,
    tracking_url     text,
    -- `admin:<id>`, or `migration` for the fulfilments made below.
    created_by       text        NOT NULL,
    -- When the catalog confirmed the shipped units as sold. A shipped
    -- fulfilment without it is retried by the sweep until the catalog
    -- answers.
    stock_shipped_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    shipped_at       timestamptz,
    delivered_at     timestamptz,
    cancelled_at     timestamptz,
    CONSTRAINT fulfilments_status_check CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled')),
    CONSTRAINT fulfilments_shipped_at_check CHECK (status NOT IN ('shipped', 'delivered') OR shipped_at IS NOT NULL)
);

CREATE INDEX fulfilments_order_idx ON fulfilments (order_id, created_at, id);
CREATE INDEX fulfilments_unsold_idx ON fulfilments (updated_at)
    WHERE status IN ('shipped', 'delivered') AND stock_shipped_at IS NULL;

CREATE TABLE fulfilment_lines (
    fulfilment_id uuid    NOT NULL REFERENCES fulfilments (id) ON DELETE CASCADE,
    line_id       uuid    NOT NULL REFERENCES order_items (id) ON DELETE CASCADE,
    quantity      integer NOT NULL,
    PRIMARY KEY (fulfilment_id, line_id),
    CONSTRAINT fulfilment_lines_quantity_check CHECK (quantity > 0)
);

CREATE INDEX fulfilment_lines_line_idx ON fulfilment_lines (line_id);

-- Orders shipped or delivered before fulfilments existed become one
-- fulfilment of everything, shipped (or delivered) when the order was. Their
-- stock was sold when they were paid, so their sale is already recorded.
INSERT INTO fulfilments (id, order_id, status, created_by, stock_shipped_at, created_at,
                         updated_at, shipped_at, delivered_at)
SELECT gen_random_uuid(), o.id, CASE o.status WHEN 'delivered' THEN 'delivered' ELSE 'shipped' END,
       'migration', o.updated_at, o.updated_at, o.updated_at,
       coalesce((SELECT min(h.at) FROM order_history h WHERE h.order_id = o.id AND h.to_status = 'shipped'), o.updated_at),
       CASE o.status WHEN 'delivered' THEN o.updated_at END
FROM orders o WHERE o.status IN ('shipped', 'delivered');

INSERT INTO fulfilment_lines (fulfilment_id, line_id, quantity)
SELECT f.id, i.id, i.quantity FROM fulfilments f JOIN order_items i ON i.order_id = f.order_id;

UPDATE order_items i SET fulfilled_quantity = i.quantity
FROM orders o WHERE o.id = i.order_id AND o.status IN ('shipped', 'delivered');

-- `shipped` becomes `fulfilled` (every unit shipped); `partially_fulfilled`
-- is new.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
UPDATE orders SET status = 'fulfilled' WHERE status = 'shipped';
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'paid', 'partially_fulfilled', 'fulfilled', 'delivered', 'cancelled', 'expired',
     'refund_pending', 'refunded'));

-- Returns: a customer asks to send back delivered units, an admin approves
-- or rejects, receives them (each line restocked at a location, or not:
-- damaged) and refunds them through payments.
--   requested → approved | rejected;  approved → received;
--   received → refunded | closed;  requested | approved → closed

-- Units of the line in returns that were not rejected or withdrawn. The
-- CHECK backs the rule that never more is returned than was ordered; the
-- handler checks against what was delivered, under the order's lock.
ALTER TABLE order_items
    ADD COLUMN returned_quantity integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT order_items_returned_check
        CHECK (returned_quantity >= 0 AND returned_quantity <= quantity);

CREATE TABLE returns (
    id               uuid        PRIMARY KEY,
    order_id         uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'requested',
    note             text        NOT NULL DEFAULT '',
    reject_reason    text,
    -- The payments domain's refund that paid it back.
    refund_id        uuid,
    -- `user:<id>` or `admin:<id>`.
    created_by       text        NOT NULL,
    -- When the catalog confirmed the restocked units (NULL while the
    -- sweep still has to tell it; NULL with nothing to restock too).
    stock_returned_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    received_at      timestamptz,
    CONSTRAINT returns_status_check CHECK (status IN
        ('requested', 'approved', 'rejected', 'received', 'refunded', 'closed'))
);

CREATE INDEX returns_order_idx ON returns (order_id, created_at, id);
CREATE INDEX returns_unstocked_idx ON returns (updated_at)
    WHERE received_at IS NOT NULL AND stock_returned_at IS NULL;

CREATE TABLE return_lines (
    return_id   uuid    NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    line_id     uuid    NOT NULL REFERENCES order_items (id) ON DELETE CASCADE,
    quantity    integer NOT NULL,
    reason      text    NOT NULL DEFAULT '',
    received    integer NOT NULL DEFAULT 0,
    restocked   integer NOT NULL DEFAULT 0,
    -- Where restocked units went back on the shelf.
    location_id uuid,
    PRIMARY KEY (return_id, line_id),
    CONSTRAINT return_lines_quantity_check CHECK (quantity > 0),
    CONSTRAINT return_lines_received_check CHECK (received >= 0 AND received <= quantity),
    CONSTRAINT return_lines_restocked_check CHECK (restocked >= 0 AND restocked <= received)
);

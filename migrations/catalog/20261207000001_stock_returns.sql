-- Returned units put back on a shelf: one claim per return (the orders
-- domain's return id), so a repeated "restock" message adds nothing twice.
-- The units are `return` movements in the ledger, naming the order's
-- reservation.
CREATE TABLE stock_returns (
    id             uuid        PRIMARY KEY,
    reservation_id uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

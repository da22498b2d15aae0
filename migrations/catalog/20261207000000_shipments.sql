-- Paid orders keep their units held until a fulfilment ships them: paying
-- commits a reservation (it no longer expires), shipping turns some of its
-- held units into a sale at the location the parcel leaves from.

-- Units of each allocation already shipped; `quantity - shipped` is still
-- held there for the order.
ALTER TABLE reservation_allocations
    ADD COLUMN shipped integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT reservation_allocations_shipped_check CHECK (shipped >= 0 AND shipped <= quantity);

-- Reservations committed before this change sold all their units when the
-- order was paid; shipping them later moves no stock.
ALTER TABLE reservations ADD COLUMN sold_at_payment boolean NOT NULL DEFAULT false;
UPDATE reservations SET sold_at_payment = true WHERE status = 'committed';
UPDATE reservation_allocations a SET shipped = a.quantity
FROM reservations r WHERE r.id = a.reservation_id AND r.status = 'committed';

-- One row per fulfilment shipped (its id is the orders domain's fulfilment
-- id): the claim that makes a repeated "ship" message sell nothing twice.
CREATE TABLE shipments (
    id             uuid        PRIMARY KEY,
    reservation_id uuid        NOT NULL REFERENCES reservations (id) ON DELETE RESTRICT,
    location_id    uuid        REFERENCES stock_locations (id) ON DELETE RESTRICT,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shipments_reservation_idx ON shipments (reservation_id);

-- The sale movements of a shipment name it.
ALTER TABLE stock_movements ADD COLUMN shipment_id uuid;

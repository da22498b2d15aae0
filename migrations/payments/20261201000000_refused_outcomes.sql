-- An outcome the orders service refused (it cannot follow it from the
-- order's status) is kept, never marked delivered: it waits here, counted
-- in the metrics and listed in the admin report, for someone to reconcile.
ALTER TABLE payment_outbox
    ADD COLUMN refused_at timestamptz,
    ADD COLUMN refusal    text;

DROP INDEX payment_outbox_pending_idx;
CREATE INDEX payment_outbox_pending_idx ON payment_outbox (id)
    WHERE delivered_at IS NULL AND refused_at IS NULL;
CREATE INDEX payment_outbox_refused_idx ON payment_outbox (id)
    WHERE delivered_at IS NULL AND refused_at IS NOT NULL;

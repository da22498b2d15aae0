-- The public event outbox: what this domain tells the world outside
-- (webhooks, the RabbitMQ exchange, mail), written in the transaction of the
-- change it describes. Each sink marks what it has taken (after its own
-- acknowledgement), so one sink being down never holds back another.
CREATE TABLE event_outbox (
    seq                 bigserial   PRIMARY KEY,
    id                  uuid        NOT NULL UNIQUE,
    type                text        NOT NULL,
    subject             text        NOT NULL,
    data                jsonb       NOT NULL,
    occurred_at         timestamptz NOT NULL,
    webhooks_relayed_at timestamptz,
    amqp_relayed_at     timestamptz,
    mail_relayed_at     timestamptz
);

CREATE INDEX event_outbox_webhooks_pending_idx ON event_outbox (seq) WHERE webhooks_relayed_at IS NULL;
CREATE INDEX event_outbox_amqp_pending_idx ON event_outbox (seq) WHERE amqp_relayed_at IS NULL;
CREATE INDEX event_outbox_mail_pending_idx ON event_outbox (seq) WHERE mail_relayed_at IS NULL;
CREATE INDEX event_outbox_occurred_at_idx ON event_outbox (occurred_at);

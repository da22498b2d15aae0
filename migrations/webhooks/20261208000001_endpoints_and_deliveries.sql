-- Webhook subscriptions and their deliveries: a durable job queue (claimed
-- with FOR UPDATE SKIP LOCKED under a lease; the lease token fences a
-- worker whose lease ran out), one row per (endpoint, event).

CREATE TABLE endpoints (
    id                  uuid        PRIMARY KEY,
    url                 text        NOT NULL,
    -- Event type names, or '*' for every type.
    events              text[]      NOT NULL,
    description         text        NOT NULL DEFAULT '',
    is_active           boolean     NOT NULL DEFAULT true,
    -- The signing secret (whsec_…). Kept in clear: every delivery is
    -- signed with it (as every Standard Webhooks sender must).
    secret              text        NOT NULL,
    -- The secret before the last rotation, still signing until it expires.
    previous_secret     text,
    previous_expires_at timestamptz,
    -- Set at the first failure after a success; cleared by a success.
    failing_since       timestamptz,
    disabled_reason     text,
    disabled_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id               uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    -- The exact bytes sent (the CloudEvents envelope), so every attempt
    -- and every redelivery signs and sends the same body.
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    lease_token      uuid,
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_response    text,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, created_at DESC);

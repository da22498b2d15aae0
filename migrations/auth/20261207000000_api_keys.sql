-- API keys for the systems that call the shop (an ERP, a warehouse): a
-- random secret shown once, stored only as its SHA-256 digest, with the
-- scopes it may use. Revoking one clears every instance's auth view.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    -- The first characters of the key, to tell keys apart in lists.
    prefix       text        NOT NULL,
    key_hash     bytea       NOT NULL,
    scopes       text[]      NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    -- The admin who made it.
    created_by   uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_name_check CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

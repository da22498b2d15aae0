-- Product images. The file lives in the media store under `key`
-- (`products/<product>/<image>-<digest>.<ext>`: a key names one content
-- forever, so it can be cached as immutable); the row keeps what was
-- checked on upload.
CREATE TABLE product_images (
    id           uuid        PRIMARY KEY,
    product_id   uuid        NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    content_type text        NOT NULL,
    bytes        integer     NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    alt          text        NOT NULL DEFAULT '',
    position     integer     NOT NULL DEFAULT 0,
    -- The variants it shows (empty: the product as a whole). Checked
    -- against the product's variants when written.
    variant_ids  uuid[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_images_key_key UNIQUE (key),
    CONSTRAINT product_images_size_check CHECK (bytes > 0 AND width > 0 AND height > 0)
);

CREATE INDEX product_images_product_idx ON product_images (product_id, position, id);

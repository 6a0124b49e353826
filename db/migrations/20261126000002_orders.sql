-- migrate:up
CREATE TYPE order_status AS ENUM ('PENDING', 'PAID', 'SHIPPED', 'CANCELED');

CREATE TABLE orders (
    id           UUID          PRIMARY KEY,
    user_id      BIGINT        NOT NULL REFERENCES users (id),
    -- Items are written and read with the order as one value: [{product_id, quantity, price}].
    items        JSONB         NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    total_price  NUMERIC(16, 2) NOT NULL CHECK (total_price > 0),
    status       order_status  NOT NULL DEFAULT 'PENDING',
    created_at   TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ   NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);

-- Serves "the user's orders, newest first" with keyset pagination.
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);

-- migrate:down
DROP TABLE orders;
DROP TYPE order_status;

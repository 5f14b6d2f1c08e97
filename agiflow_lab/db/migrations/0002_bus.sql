-- Message bus: the Postgres queue backend, the transactional outbox and consumer idempotency.
--
-- Fan-out is materialised: publishing a message inserts one delivery row per consumer group
-- subscribed to its topic, so each group has its own state, attempts and lease for that message
-- and one group's failure never touches another's. A group that subscribes later is backfilled
-- from the messages still retained (like Kafka's auto.offset.reset=earliest).

CREATE TABLE control.bus_subscriptions (
    topic      text NOT NULL,
    group_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, group_name)
);

CREATE TABLE control.bus_messages (
    id         uuid PRIMARY KEY,
    seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bus_messages_topic ON control.bus_messages (topic, seq);
CREATE INDEX bus_messages_created ON control.bus_messages (created_at);

-- topic, key and seq are copied from the message so that claiming and the per-key ordering check
-- read one table through partial indexes that hold only live (pending or claimed) rows.
CREATE TABLE control.bus_deliveries (
    message_id   uuid NOT NULL REFERENCES control.bus_messages(id) ON DELETE CASCADE,
    group_name   text NOT NULL,
    seq          bigint NOT NULL,
    topic        text NOT NULL,
    key          text NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    claim_token  uuid,
    claimed_by   text,
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, group_name)
);
CREATE INDEX bus_deliveries_live ON control.bus_deliveries (group_name, seq)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX bus_deliveries_live_key ON control.bus_deliveries (group_name, topic, key, seq)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX bus_deliveries_dead ON control.bus_deliveries (topic, group_name, updated_at)
    WHERE state = 'dead';

-- Rows are written in the producer's own transaction and deleted once the relay has published them.
CREATE TABLE control.bus_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id uuid NOT NULL,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Message ids a consumer has already applied; written in the consumer's state-changing transaction.
CREATE TABLE control.processed_messages (
    consumer     text NOT NULL,
    message_id   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX processed_messages_at ON control.processed_messages (processed_at);

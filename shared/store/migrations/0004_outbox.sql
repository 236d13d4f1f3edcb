-- The durable outbox: notifications wait here until delivered.
CREATE TABLE outbox (
    id {{id}},
    kind TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    dedupe_key TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at {{real}} NOT NULL,
    next_attempt_at {{real}} NOT NULL,
    lease_until {{real}} NOT NULL DEFAULT 0,
    leased_by TEXT,
    last_error TEXT,
    result TEXT,
    done_at {{real}}
);
CREATE UNIQUE INDEX outbox_dedupe ON outbox (dedupe_key);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_key ON outbox (key, status, id);

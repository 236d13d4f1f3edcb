-- Coordination between replicas: leases for singleton jobs (the SQLite backend; PostgreSQL uses
-- advisory locks) and the last run of each scheduled job, so a job runs once per interval in all.

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at {{real}} NOT NULL,
    expires_at {{real}} NOT NULL
);

CREATE TABLE job_runs (
    name TEXT PRIMARY KEY,
    started_at {{real}} NOT NULL,
    finished_at {{real}},
    succeeded_at {{real}},
    runner TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'running',
    detail TEXT NOT NULL DEFAULT ''
);

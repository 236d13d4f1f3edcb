-- Threat feeds (the registry `safelinks feeds` edits) and URL scans.

-- One row per configured feed. `version` moves whenever the feed's content changes, so every
-- process reloads its index; `lease_owner`/`lease_until` elect the one process that downloads it.
CREATE TABLE feeds (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    column_name TEXT,
    every_seconds {{real}} NOT NULL,
    enabled {{bool}} NOT NULL DEFAULT {{true}},
    created_at {{real}} NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_attempt_at {{real}},
    last_success_at {{real}},
    last_changed_at {{real}},
    last_error TEXT,
    last_error_at {{real}},
    entries {{bigint}} NOT NULL DEFAULT 0,
    bad_lines {{bigint}} NOT NULL DEFAULT 0,
    rejected {{bigint}} NOT NULL DEFAULT 0,
    sha256 TEXT,
    version {{bigint}} NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until {{real}}
);

-- One row per scanned URL (canonical form): who submitted it, its state and what it found.
CREATE TABLE scans (
    url TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    verdict TEXT,
    scan_id TEXT,
    result_url TEXT,
    reason TEXT NOT NULL DEFAULT '',
    threat_types TEXT NOT NULL DEFAULT '',
    submitted_at {{real}} NOT NULL,
    finished_at {{real}}
);
CREATE INDEX scans_status ON scans (status, submitted_at);

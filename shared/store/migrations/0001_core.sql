-- Clicks, admin verdicts and their change log, the Tenant Allow/Block List.

-- One row per click, in the shape of Defender's UrlClickEvents (snake_case here; exports use its names).
-- A warning-page view and its click-through share report_id; the pair (report_id, is_clicked_through)
-- is unique, which makes every click-through token single-use across replicas.
CREATE TABLE clicks (
    id {{id}},
    report_id TEXT NOT NULL,
    timestamp {{real}} NOT NULL,
    url TEXT NOT NULL,
    url_rhost TEXT NOT NULL,
    action_type TEXT NOT NULL,
    account_upn TEXT,
    account_object_id TEXT,
    workload TEXT NOT NULL,
    network_message_id TEXT,
    threat_types TEXT NOT NULL DEFAULT '',
    detection_methods TEXT NOT NULL DEFAULT '',
    ip_address TEXT,
    is_clicked_through {{bool}} NOT NULL DEFAULT {{false}},
    url_chain TEXT NOT NULL DEFAULT '[]',
    tenant_id TEXT,
    team_id TEXT,
    channel_id TEXT,
    conversation_id TEXT,
    message_id TEXT,
    sender TEXT,
    recipient TEXT,
    user_agent TEXT,
    policy TEXT,
    verdict TEXT NOT NULL,
    verdict_source TEXT
);
CREATE UNIQUE INDEX clicks_report ON clicks (report_id, is_clicked_through);
CREATE INDEX clicks_time ON clicks (timestamp);
CREATE INDEX clicks_user ON clicks (account_upn, timestamp);
-- Reversed host ("moc.elpmaxe.www"): a verdict on a host covers its subdomains, found by prefix.
CREATE INDEX clicks_rhost ON clicks (url_rhost, timestamp);

-- Verdicts set by an admin, keyed by lookup expression (host + path prefix, see DESIGN.md).
CREATE TABLE verdicts (
    expression TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    threat_types TEXT NOT NULL DEFAULT '',
    detection_method TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    set_by TEXT,
    set_at {{real}} NOT NULL
);

-- Every change of mind about an expression, from any source; the alert engine's look-back runs on it.
CREATE TABLE verdict_changes (
    id {{id}},
    expression TEXT NOT NULL,
    old_verdict TEXT NOT NULL,
    new_verdict TEXT NOT NULL,
    threat_types TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    changed_at {{real}} NOT NULL
);
CREATE INDEX verdict_changes_time ON verdict_changes (changed_at);

-- Tenant Allow/Block List entries for URLs.
CREATE TABLE tabl_entries (
    id {{id}},
    value TEXT NOT NULL,
    action TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    created_at {{real}} NOT NULL,
    created_by TEXT,
    expires_at {{real}},
    last_used_at {{real}}
);
CREATE UNIQUE INDEX tabl_value ON tabl_entries (value, action);

-- A monotonically increasing version per cached table, so replicas know when to reload.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    version {{bigint}} NOT NULL
);
INSERT INTO change_counters (name, version) VALUES ('verdicts', 0);
INSERT INTO change_counters (name, version) VALUES ('tabl', 0);

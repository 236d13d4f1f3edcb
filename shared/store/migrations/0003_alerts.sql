-- Alerts, the events folded into them, incidents and their entities, actions taken, engine cursors.

-- alert_key is deterministic (rule + click ReportId, or rule + verdict change + ReportId): a replay,
-- a restart or a second worker seeing the same event can never store a second alert.
CREATE TABLE alerts (
    id {{id}},
    alert_key TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    recommended_actions TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    classification TEXT NOT NULL DEFAULT 'unknown',
    determination TEXT NOT NULL DEFAULT 'unknown',
    assigned_to TEXT,
    incident_id {{bigint}},
    group_key TEXT NOT NULL DEFAULT '',
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL,
    resolved_at {{real}},
    first_activity {{real}} NOT NULL,
    last_activity {{real}} NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 1,
    url TEXT NOT NULL,
    domain TEXT NOT NULL DEFAULT '',
    account_upn TEXT,
    account_object_id TEXT,
    workload TEXT NOT NULL,
    conversation_id TEXT,
    message_id TEXT,
    sender TEXT,
    report_id TEXT NOT NULL,
    change_id {{bigint}},
    evidence TEXT NOT NULL DEFAULT '[]',
    details TEXT NOT NULL DEFAULT '{}',
    comments TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX alerts_key ON alerts (alert_key);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_incident ON alerts (incident_id);
CREATE INDEX alerts_group ON alerts (rule_id, group_key, last_activity);
CREATE INDEX alerts_open_rule ON alerts (rule_id, status);

-- Every event (click or click under a verdict change) an alert took, aggregated or suppressed ones too.
CREATE TABLE alert_events (
    event_key TEXT PRIMARY KEY,
    alert_id {{bigint}} NOT NULL,
    report_id TEXT NOT NULL,
    suppressed {{bool}} NOT NULL DEFAULT {{false}},
    at {{real}} NOT NULL
);

CREATE TABLE incidents (
    id {{id}},
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    classification TEXT NOT NULL DEFAULT 'unknown',
    determination TEXT NOT NULL DEFAULT 'unknown',
    assigned_to TEXT,
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL,
    resolved_at {{real}},
    first_activity {{real}} NOT NULL,
    last_activity {{real}} NOT NULL,
    alert_count INTEGER NOT NULL DEFAULT 0,
    resolving_comment TEXT NOT NULL DEFAULT '',
    comments TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX incidents_created ON incidents (created_at);

-- What an incident is about (url, domain, user, message, sender), for correlating new alerts.
CREATE TABLE incident_entities (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    incident_id {{bigint}} NOT NULL,
    PRIMARY KEY (kind, value, incident_id)
);
CREATE INDEX incident_entities_incident ON incident_entities (incident_id);

-- Who did what to an alert or incident, from a card, the API or the command line.
CREATE TABLE alert_actions (
    id {{id}},
    alert_id {{bigint}},
    incident_id {{bigint}},
    verb TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL DEFAULT '',
    via TEXT NOT NULL,
    at {{real}} NOT NULL
);
CREATE INDEX alert_actions_alert ON alert_actions (alert_id);

-- How far the engine has read the clicks and verdict_changes tables.
CREATE TABLE alert_cursors (
    name TEXT PRIMARY KEY,
    position {{bigint}} NOT NULL
);
INSERT INTO alert_cursors (name, position) VALUES ('clicks', 0);
INSERT INTO alert_cursors (name, position) VALUES ('verdict_changes', 0);

-- E-mails sent per rule and UTC day, for the daily notification limit.
CREATE TABLE alert_notification_counts (
    rule_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    day TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, channel, day)
);

-- Quarantine: Teams messages hidden from their readers through Microsoft Graph (policyViolation),
-- released again, or that could not be hidden, with why. One row per message.
CREATE TABLE quarantined_messages (
    id {{id}},
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '{}',
    sender TEXT,
    sender_aad_object_id TEXT,
    links TEXT NOT NULL DEFAULT '[]',
    reason TEXT NOT NULL DEFAULT '',
    cause TEXT NOT NULL,
    last_action TEXT NOT NULL,
    state TEXT NOT NULL,
    state_detail TEXT,
    generation INTEGER NOT NULL DEFAULT 1,
    page_token TEXT NOT NULL,
    requested_by TEXT,
    requested_at {{real}} NOT NULL,
    hidden_at {{real}},
    released_by TEXT,
    released_at {{real}},
    updated_at {{real}} NOT NULL,
    UNIQUE (conversation_id, message_id)
);
CREATE UNIQUE INDEX quarantined_messages_page ON quarantined_messages (page_token);
CREATE INDEX quarantined_messages_state ON quarantined_messages (state, updated_at);

-- A team's AAD group id (Graph's team id), seen in channelData.team.aadGroupId, by its Teams thread id.
CREATE TABLE teams_groups (
    team_id TEXT PRIMARY KEY,
    aad_group_id TEXT NOT NULL,
    updated_at {{real}} NOT NULL
);

-- Messages reported by users with the "Report to security" message action.
CREATE TABLE message_reports (
    id {{id}},
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    reporter_id TEXT NOT NULL,
    reporter_aad_object_id TEXT,
    reporter_name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    verdicts TEXT NOT NULL DEFAULT '[]',
    alert_id INTEGER,
    reported_at {{real}} NOT NULL,
    UNIQUE (conversation_id, message_id, reporter_id)
);

-- The quarantine's own places in the verdict change log and in the alerts (it tells alerts raised on a
-- quarantined message what happened to it). Both start at the present: no retroactive sweep on upgrade.
INSERT INTO alert_cursors (name, position) SELECT 'quarantine', COALESCE(MAX(id), 0) FROM verdict_changes;
INSERT INTO alert_cursors (name, position) SELECT 'quarantine_alerts', COALESCE(MAX(id), 0) FROM alerts;

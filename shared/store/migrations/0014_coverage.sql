-- Coverage: where the Teams app is installed (teams, group chats, users' personal scope), as the
-- coverage job last found it through Microsoft Graph, and each kind's last discovery round.
CREATE TABLE coverage_targets (
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    detail TEXT,
    generation INTEGER NOT NULL DEFAULT 0,
    seen_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL,
    installed_at {{real}},
    PRIMARY KEY (kind, target_id)
);
CREATE INDEX coverage_targets_state ON coverage_targets (kind, state);

CREATE TABLE coverage_rounds (
    kind TEXT PRIMARY KEY,
    started_at {{real}} NOT NULL,
    finished_at {{real}},
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    found INTEGER NOT NULL DEFAULT 0
);

-- The Teams bot: messages kept as evidence, conversations it is installed in, the cards it posted,
-- the users it looked up, and its settings (the security channel).

-- One row per Teams message that carried links (Graph teamsMessageEvidence, see shared/evidence.py).
CREATE TABLE teams_messages (
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    parent_message_id TEXT,
    thread_id TEXT NOT NULL,
    thread_type TEXT NOT NULL,
    thread_sub_type TEXT NOT NULL,
    tenant_id TEXT,
    team_id TEXT,
    team_name TEXT,
    channel_id TEXT,
    channel_name TEXT,
    sender_aad_object_id TEXT,
    sender_id TEXT,
    sender_name TEXT,
    sender_upn TEXT,
    sender_tenant_id TEXT,
    is_external {{bool}} NOT NULL DEFAULT {{false}},
    urls TEXT NOT NULL DEFAULT '[]',
    snippet TEXT NOT NULL DEFAULT '',
    subject TEXT,
    received_at {{real}} NOT NULL,
    modified_at {{real}},
    deleted_at {{real}},
    PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX teams_messages_time ON teams_messages (received_at);
CREATE INDEX teams_messages_sender ON teams_messages (sender_aad_object_id, received_at);

-- Conversations the bot is (or was) installed in, with the reference needed to post there later.
CREATE TABLE teams_conversations (
    conversation_id TEXT PRIMARY KEY,
    conversation_type TEXT NOT NULL,
    tenant_id TEXT,
    team_id TEXT,
    team_name TEXT,
    channel_id TEXT,
    channel_name TEXT,
    reference TEXT NOT NULL,
    installed {{bool}} NOT NULL DEFAULT {{true}},
    greeted {{bool}} NOT NULL DEFAULT {{false}},
    updated_at {{real}} NOT NULL
);
CREATE INDEX teams_conversations_team ON teams_conversations (team_id);

-- Cards the bot posted, by logical key, so posting the same key again edits the card in place.
CREATE TABLE teams_cards (
    card_key TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    posted_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL
);

-- Users the bot looked up through the connector (UPN and home tenant are not in activities).
CREATE TABLE teams_users (
    user_id TEXT PRIMARY KEY,
    aad_object_id TEXT,
    name TEXT NOT NULL DEFAULT '',
    upn TEXT,
    tenant_id TEXT,
    looked_up_at {{real}} NOT NULL
);

-- Bot settings that survive restarts (the security channel).
CREATE TABLE bot_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at {{real}} NOT NULL,
    updated_by TEXT
);

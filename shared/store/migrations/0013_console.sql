-- The analyst console: one-time sign-in links, sessions, and the audit log of every change.

-- A one-time sign-in link; only its SHA-256 is kept, so the table alone never signs anyone in.
CREATE TABLE console_links (
    token_hash TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    created_at {{real}} NOT NULL,
    expires_at {{real}} NOT NULL,
    used_at {{real}}
);

-- A signed-in browser; the cookie holds the token, the table its SHA-256.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    csrf TEXT NOT NULL,
    via TEXT NOT NULL,
    created_at {{real}} NOT NULL,
    last_seen {{real}} NOT NULL,
    expires_at {{real}} NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- A state and PKCE verifier of an OpenID Connect sign-in under way (10 minutes, used once).
CREATE TABLE console_oidc_states (
    state TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at {{real}} NOT NULL
);

-- Every change made from the console, the command line, the REST API or a card: who, when, what.
CREATE TABLE audit_log (
    id {{id}},
    at {{real}} NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL DEFAULT '',
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The user principal name an identity provider gives a console user (OpenID Connect's upn or
-- preferred_username claim), kept with their sessions and with the changes they make: the console
-- knows them by object id and display name, a privacy request names them by UPN.
ALTER TABLE console_sessions ADD COLUMN user_upn TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN actor_upn TEXT NOT NULL DEFAULT '';

"""The safelinks command and the process that composes the roles."""

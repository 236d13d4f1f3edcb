"""The analyst console: server-rendered pages under ``/console/`` over the same services."""

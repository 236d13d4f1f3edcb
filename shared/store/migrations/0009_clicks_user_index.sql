-- Every lookup of clicks by user compares LOWER(account_upn), which this index cannot serve, so it
-- only cost a B-tree insert on every click (about a fifth of the row's write). Lookups by user are
-- rare administrative reads (listings filtered by user, privacy exports) and scan instead.
DROP INDEX clicks_user;

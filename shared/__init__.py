"""Safe Links domain: URLs and the URL lists over them, signing, policies, verdicts, the store and the alert engine."""

"""Safe Links domain: URLs, signing, policies, verdicts, the store and the alert engine."""

"""The project's exception tree: everything teams-safelinks raises on purpose derives from ``SafeLinksError``.

Each area keeps its errors next to its code; this is the root and the map. An error that is also a bad
value (a URL, a duration, a policy) derives from ``ValueError`` as well, so code that validates input
with ``except ValueError`` keeps working. How an error is answered is decided by its type in one place
per entry point: exit statuses in ``safelinks/cli/exits.py``, HTTP statuses of the REST API in
``safelinks/statuses.py``; the console answers its own errors with a page where they happen.

SafeLinksError
├── ConfigError               a setting cannot be used; ``setting`` names it (shared/errors.py)
│   ├── KeyConfigError        the signing keys (also a SigningError; shared/signing.py)
│   ├── PolicyFileError       the policy file (also a PolicyError; shared/policy/model.py)
│   ├── RulesFileError        the alert rules file (also a RulesError; shared/alerts/errors.py)
│   └── UnsafeStart           an unauthenticated bot reachable beyond loopback (bot/trust.py)
├── URLError → InvalidURL → NotWebURL   a URL a browser would refuse, or not http(s) (shared/urls/errors.py)
├── SigningError              a link's signature or context (shared/signing.py)
├── PolicyError               a policy document (shared/policy/model.py)
├── TablError, RewriteExemptionError, DurationError, JSONBodyError, EvidenceError, ScheduleError
│                             a value given in a list, a duration, a JSON body, a schedule
├── StoreError                the database (shared/store/errors.py)
│   ├── StoreUnavailable, DuplicateKey, PostgresOptionsError, LeaderError
├── FeedRegistryError → FeedExists, UnknownFeed, BadFeedSpec      (shared/store/feeds.py)
├── FeedError → FeedFormatError, FeedFetchError, FeedCacheError     (shared/feeds/errors.py)
├── ExpressionIndexError → IndexBuildError                          (shared/verdicts/index.py)
├── SafeBrowsingError → SafeBrowsingUnavailable, ChecksumMismatch   (shared/verdicts/sb_lists.py)
├── ScanError → ScanRefused, ScanFailed                             (shared/verdicts/scanner.py)
├── HeuristicsError                                                 (shared/verdicts/heuristics.py)
├── NetguardError → BlockedAddress, ResolutionFailed, BlockedEndpoint (shared/netguard.py)
├── GraphError → GraphUnavailable, GraphRefused                     (shared/graph/errors.py)
├── AlertError → RulesError, NotFound, InvalidChange, NotAuthorized, ClickRecordError
│                                                                   (shared/alerts/errors.py)
├── QuarantineError → QuarantineNotFound                            (shared/quarantine/model.py)
├── CoverageError             installing the app cannot go on (shared/coverage/model.py)
├── PrivacyError                                                    (shared/privacy/subject.py)
├── RetryLater, PermanentFailure   a delivery's outcome, raised by outbox handlers (shared/outbox.py)
├── BotError → BadActivity, ChannelError, UnknownConversation, AuthenticationFailed, ActionRefused,
│              ActionError, QuarantineRefused, CardActionRefused    (bot/errors.py and users)
├── TokenError                a click-through token (proxy/tokens.py)
├── BadLink                   a wrapped link the proxy cannot read (shared/linkparams.py)
├── FilterError               a console listing's filter value (also a ValueError; console/filters.py)
├── OidcError                 a console sign-in with OpenID Connect; safe to show (console/oidc.py)
├── Forbidden                 an API token that may not do what it asks (safelinks/statuses.py)
└── CliError → UsageError     a command's own failure with its exit status (safelinks/cli/context.py)

ManifestError → SchemaUnavailable, PackageInvalid                   (manifest/errors.py)
    The one root outside the tree: the ``manifest`` package imports nothing of ours (it builds the Teams
    app package on its own), so it cannot derive from ``SafeLinksError``. Its errors are answered by
    type next to the tree's, in ``safelinks/cli/exits.py``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SafeLinksError"]


class SafeLinksError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(SafeLinksError):
    """The configuration is invalid; the message names the offending key.

    ``problems`` holds (setting, reason) pairs, the setting as a field name, so a caller that took the
    value from somewhere else (a command-line flag) can name it the way the user typed it. ``setting``
    is the variable a whole-file or whole-value problem belongs to (``SAFELINKS_POLICY_FILE``), when the
    message does not already start with it.
    """

    setting: str | None = None

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def named(self) -> str:
        """The message, after the setting it is about."""
        return f"{self.setting}: {self}" if self.setting else str(self)

"""Microsoft Graph for teams-safelinks: an app-only token (client credentials) and the message calls it needs."""

from shared.graph.client import GraphClient, MessageRef, policy_violation, scope_for, segment
from shared.graph.errors import GraphError, GraphRefused, GraphUnavailable
from shared.graph.token import ClientCredentials

__all__ = [
    "ClientCredentials",
    "GraphClient",
    "GraphError",
    "GraphRefused",
    "GraphUnavailable",
    "MessageRef",
    "policy_violation",
    "scope_for",
    "segment",
]

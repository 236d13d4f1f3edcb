"""Coverage: the Teams app installed through Microsoft Graph in the teams, group chats and users' personal
scope where it is missing, and a record of where it is."""

from shared.coverage.model import (
    RSC_PERMISSIONS,
    CoverageError,
    Kind,
    KindSummary,
    Round,
    Scope,
    State,
    Target,
    install_body,
    install_permission,
)
from shared.coverage.service import JOB, KIND, Coverage
from shared.coverage.store import CoverageStore

__all__ = [
    "JOB",
    "KIND",
    "RSC_PERMISSIONS",
    "Coverage",
    "CoverageError",
    "CoverageStore",
    "Kind",
    "KindSummary",
    "Round",
    "Scope",
    "State",
    "Target",
    "install_body",
    "install_permission",
]

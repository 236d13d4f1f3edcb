"""Coverage: the Teams app installed through Microsoft Graph in the teams, group chats and users' personal
scope where it is missing, and a record of where it is.

The package exports the model; the job that installs is ``shared.coverage.service`` and the record is
kept by ``shared.store.coverage``, which reads the model from here.
"""

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

__all__ = [
    "RSC_PERMISSIONS",
    "CoverageError",
    "Kind",
    "KindSummary",
    "Round",
    "Scope",
    "State",
    "Target",
    "install_body",
    "install_permission",
]

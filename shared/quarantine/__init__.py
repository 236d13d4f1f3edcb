"""Quarantine: Teams messages whose links are malicious, hidden from their readers through Graph.

The package exports the model; the service that hides and releases is ``shared.quarantine.service``
and the records are kept by ``shared.store.quarantine``, which reads the model from here.
"""

from shared.quarantine.model import (
    Cause,
    JudgedLink,
    Mode,
    QuarantineError,
    QuarantineNotFound,
    QuarantineOutcome,
    QuarantineRecord,
    State,
)

__all__ = [
    "Cause",
    "JudgedLink",
    "Mode",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineOutcome",
    "QuarantineRecord",
    "State",
]

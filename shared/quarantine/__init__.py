"""Quarantine: Teams messages whose links are malicious, hidden from their readers through Graph."""

from shared.quarantine.model import (
    Cause,
    JudgedLink,
    Mode,
    QuarantineError,
    QuarantineNotFound,
    QuarantineRecord,
    State,
)
from shared.quarantine.service import KIND, Quarantine
from shared.quarantine.store import QuarantineStore

__all__ = [
    "KIND",
    "Cause",
    "JudgedLink",
    "Mode",
    "Quarantine",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineRecord",
    "QuarantineStore",
    "State",
]

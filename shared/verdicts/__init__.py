"""Verdicts: what the sources think of a URL, combined with precedence, cached, and announced on change."""

from shared.verdicts.model import UNKNOWN, Verdict, VerdictProvider, VerdictResult

__all__ = ["UNKNOWN", "Verdict", "VerdictProvider", "VerdictResult"]

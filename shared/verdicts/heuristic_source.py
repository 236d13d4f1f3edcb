"""The heuristics as a verdict source: tier 2, suspicious at most, every sign named."""

from __future__ import annotations

from collections.abc import Sequence

from shared.verdicts.heuristics import HeuristicsConfig, HeuristicsError, assess
from shared.verdicts.model import Verdict, VerdictResult

NAME = "heuristics"
DETECTION_METHOD = "URL heuristics"


class HeuristicsProvider:
    """Signs in the URL itself; consulted only when no admin verdict, feed or scan has an opinion."""

    name = NAME
    tier = 2

    def __init__(self, config: HeuristicsConfig | None = None, *, tenant_domains: Sequence[str] = (),
                 enabled: bool = True) -> None:
        config = config or HeuristicsConfig()
        extra = [d for d in tenant_domains if d.strip().lower() not in config.protected_domains]
        if extra:
            # The tenant's own domains are what a look-alike most wants to be taken for.
            config = config.model_copy(update={"protected_domains": [*config.protected_domains,
                                                                     *(d.strip().lower() for d in extra)]})
        self.config = config
        self._enabled = enabled

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        try:
            found = assess(url, self.config)
        except HeuristicsError:
            return None
        if not found.suspicious:
            return None
        return VerdictResult(
            verdict=Verdict.SUSPICIOUS,
            source=NAME,
            detection_method=DETECTION_METHOD,
            reasons=(*found.reasons, f"heuristic score {found.score:g} >= {self.config.threshold:g}"),
        )

    async def update(self) -> None:
        """Nothing to refresh: the tables come with the configuration."""

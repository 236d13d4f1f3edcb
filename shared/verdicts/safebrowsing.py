"""Google Safe Browsing v4 as an optional verdict source, under Google's usage rules.

Update mode keeps the hash-prefix lists locally and asks `fullHashes:find` only when a URL's
expression hashes onto a listed prefix; Lookup mode asks `threatMatches:find` per URL. The rules
it follows: list updates no sooner than `minimumWaitDuration` (and backing off exponentially on
errors); full-hash answers cached for their `cacheDuration` and misses for the
`negativeCacheDuration`; no warning from lists not updated within the last 30 minutes; and every
warning it causes carries Google's attribution and "not guaranteed" notice.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.redaction import redact_text
from shared.verdicts.changes import ChangeLog, ExpressionChange
from shared.verdicts.model import Verdict, VerdictResult
from shared.verdicts.sb_lists import (
    THREAT_NAMES,
    PrefixList,
    SafeBrowsingClient,
    SafeBrowsingError,
    duration,
    full_hash,
)

log = logging.getLogger(__name__)
NAME = "safebrowsing"
DETECTION_METHOD = "Google Safe Browsing"
NOTICE = (
    "Advisory provided by Google. Google works to provide the most accurate and up-to-date information about "
    "unsafe web resources. However, Google cannot guarantee that its information is comprehensive and "
    "error-free: some risky sites may not be identified, and some safe sites may be identified in error."
)
FRESHNESS = 30 * 60.0
DEFAULT_UPDATE_WAIT = 30 * 60.0
LOOKUP_NEGATIVE_TTL = 300.0
BACKOFF_BASE = 15 * 60.0
BACKOFF_MAX = 24 * 3600.0


class SafeBrowsingProvider:
    """Tier 1: Google Safe Browsing, in `update` or `lookup` mode."""

    name = NAME
    tier = 1

    def __init__(self, client: SafeBrowsingClient, clock: Callable[[], datetime], *, mode: str = "update",
                 threat_types: list[str] | None = None, changes: ChangeLog | None = None,
                 backoff_base: float = BACKOFF_BASE) -> None:
        if mode not in ("update", "lookup"):
            raise SafeBrowsingError(f"unknown Safe Browsing mode {mode!r}: use update or lookup")
        self._client = client
        self._clock = clock
        self.mode = mode
        self.threat_types = threat_types or list(THREAT_NAMES)
        self.lists = {t: PrefixList(t) for t in self.threat_types}
        self._changes = changes
        self._backoff_base = backoff_base
        self.last_update: float | None = None
        self.next_update_at = 0.0
        self._errors_in_row = 0
        self.last_error = ""
        self._full_wait_until = 0.0
        self._positive: dict[bytes, tuple[float, str]] = {}  # full hash -> (expiry, threat type)
        self._negative: dict[bytes, float] = {}  # prefix -> expiry
        self._lookups: dict[str, tuple[float, str | None]] = {}  # lookup mode: url -> (expiry, threat type)
        self._logged: set[str] = set()
        self.api_calls: dict[str, int] = {"update": 0, "full_hashes": 0, "lookup": 0}

    @property
    def enabled(self) -> bool:
        return True

    def _now(self) -> float:
        return self._clock().timestamp()

    @property
    def fresh(self) -> bool:
        """Whether list data may be used to warn: updated within the last 30 minutes."""
        return self.last_update is not None and self._now() - self.last_update <= FRESHNESS

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        if self.mode == "lookup":
            return await self._check_lookup(url)
        if not self.fresh:
            return None
        now = self._now()
        hashes = [(e, full_hash(e)) for e in expressions]
        for expr, digest in hashes:
            cached = self._positive.get(digest)
            if cached and cached[0] > now:
                return self._result(expr, cached[1])
        wanted: dict[bytes, list[tuple[str, bytes]]] = {}
        for expr, digest in hashes:
            for lst in self.lists.values():
                prefix = lst.matching_prefix(digest)
                if prefix is not None and self._negative.get(prefix, 0.0) <= now:
                    wanted.setdefault(prefix, []).append((expr, digest))
        if not wanted or now < self._full_wait_until:
            return None  # nothing listed, or not allowed to ask yet: no confirmed match, no warning
        self.api_calls["full_hashes"] += 1
        answer = await self._client.find_full_hashes(self.lists.values(), wanted)
        self._full_wait_until = now + duration(answer.get("minimumWaitDuration"))
        for match in answer.get("matches") or ():
            listed = _decode(match)
            if listed is not None:
                expiry = now + duration(match.get("cacheDuration"), 300.0)
                self._positive[listed] = (expiry, str(match.get("threatType", "")))
        negative_until = now + duration(answer.get("negativeCacheDuration"), 300.0)
        for prefix in wanted:
            self._negative[prefix] = negative_until
        for expr, digest in hashes:
            hit = self._positive.get(digest)
            if hit and hit[0] > now:
                self._log_first(expr, hit[1])
                return self._result(expr, hit[1])
        return None

    async def _check_lookup(self, url: str) -> VerdictResult | None:
        now = self._now()
        cached = self._lookups.get(url)
        if cached is None or cached[0] <= now:
            self.api_calls["lookup"] += 1
            answer = await self._client.lookup(self.threat_types, [url])
            matches = answer.get("matches") or []
            if matches:
                cached = (now + duration(matches[0].get("cacheDuration"), 300.0), str(matches[0]["threatType"]))
            else:
                cached = (now + LOOKUP_NEGATIVE_TTL, None)
            self._lookups[url] = cached
            if len(self._lookups) > 100_000:
                self._lookups = {u: c for u, c in self._lookups.items() if c[0] > now}
        return None if cached[1] is None else self._result(url, cached[1])

    def _result(self, expression: str, threat_type: str) -> VerdictResult:
        threat = THREAT_NAMES.get(threat_type, threat_type.lower() or "malicious")
        return VerdictResult(
            verdict=Verdict.MALICIOUS,
            source=NAME,
            threat_types=(threat,),
            detection_method=DETECTION_METHOD,
            reasons=(f"Google Safe Browsing lists it as {threat} ({threat_type}): {expression}",),
            expression=expression,
            notice=NOTICE,
        )

    def _log_first(self, expression: str, threat_type: str) -> None:
        """The first confirmation of an expression in this process is a change of mind: log it."""
        if self._changes is None or expression in self._logged:
            return
        self._logged.add(expression)
        change = ExpressionChange(expression, Verdict.UNKNOWN, Verdict.MALICIOUS,
                                  (THREAT_NAMES.get(threat_type, threat_type),), "confirmed by Google Safe Browsing")
        task = asyncio.get_running_loop().create_task(self._changes.record(NAME, [change], at=self._clock()))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def update(self) -> None:
        await self.refresh()

    async def refresh(self) -> bool:
        """Fetch list updates if `minimumWaitDuration` (or the error back-off) allows; True if fetched."""
        if self.mode == "lookup":
            return False
        now = self._now()
        if now < self.next_update_at:
            return False
        self.api_calls["update"] += 1
        try:
            answer = await self._client.fetch_updates(self.lists.values())
            for item in answer.get("listUpdateResponses") or ():
                lst = self.lists.get(str(item.get("threatType")))
                if lst is not None:
                    lst.apply(item)
        except SafeBrowsingError as exc:
            self._errors_in_row += 1
            self.last_error = redact_text(str(exc))
            # The v4 back-off: 15 min x 2^(n-1) x (1 + random), at most 24 hours.
            wait = min(BACKOFF_MAX, self._backoff_base * 2 ** (self._errors_in_row - 1) * (1 + random.random()))
            self.next_update_at = now + wait
            log.warning("Safe Browsing update failed (next try in %.0f s): %s", wait, exc)
            return False
        self._errors_in_row = 0
        self.last_error = ""
        self.last_update = now
        self.next_update_at = now + duration(answer.get("minimumWaitDuration"), DEFAULT_UPDATE_WAIT)
        self._positive = {d: v for d, v in self._positive.items() if v[0] > now}
        self._negative = {p: e for p, e in self._negative.items() if e > now}
        return True

    async def run(self) -> None:
        """Keep the lists current for as long as the process runs."""
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # never let the loop die; the next round tries again
                log.warning("Safe Browsing update loop: %s", exc)
            await asyncio.sleep(max(1.0, min(60.0, self.next_update_at - self._now())))

    def health_detail(self) -> dict[str, object]:
        age = None if self.last_update is None else self._now() - self.last_update
        return {"mode": self.mode, "fresh": self.fresh if self.mode == "update" else True,
                "age_seconds": age, "last_error": self.last_error or None,
                "prefixes": {t: len(lst) for t, lst in self.lists.items()}, "api_calls": dict(self.api_calls)}

    async def close(self) -> None:
        await self._client.close()


def _decode(match: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode((match.get("threat") or {}).get("hash", ""))
    except ValueError:
        return None

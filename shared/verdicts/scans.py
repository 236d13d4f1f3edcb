"""URL scans as a verdict source: an unknown URL is pending while a scanner visits it.

The first click on a URL nobody knows starts a scan and answers `pending`, which is what the
proxy's scan-in-progress page (ScanUrls) waits on. The result is logged as a verdict change
(pending → malicious, or pending → clean) and wakes the waiting clicks. A clean scan is not an
all-clear: it gives no opinion, so the heuristics still speak. Scans live in the `scans` table,
so every process sees a scan another one started, and only one process submits a given URL.

Before a URL is submitted its host is resolved and refused if any address is private,
loopback, link-local or otherwise internal (unless configured), so a chat message cannot make
a self-hosted scanner probe the internal network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from aiohttp.abc import AbstractResolver

from shared.netguard import NetguardError, resolve_public
from shared.store.database import Database, Row
from shared.store.scans import ScanTable
from shared.tasks import stop_tasks
from shared.urls import InvalidURL, URLError, expression_of, parse
from shared.verdicts.changes import ChangeLog, ExpressionChange
from shared.verdicts.model import Verdict, VerdictResult
from shared.verdicts.scanner import ScanError, Scanner, ScanRefused, ScanReport

log = logging.getLogger(__name__)
NAME = "scan"
DETECTION_METHOD = "URL detonation"
_PENDING_REASON = "scan in progress"


class ScanProvider:
    """Tier 1, last resort: scanners' verdicts, and `pending` while a scan runs, for URLs no feed knows."""

    name = NAME
    tier = 1
    last_resort = True

    def __init__(
        self,
        db: Database,
        scanner: Scanner,
        changes: ChangeLog,
        clock: Callable[[], datetime],
        *,
        poll_interval: float = 2.0,
        timeout: float = 120.0,
        result_ttl: float = 86400.0,
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
        max_running: int = 8,
    ) -> None:
        self._scans = ScanTable(db)
        self._scanner = scanner
        self._changes = changes
        self._clock = clock
        self._poll = poll_interval
        self._timeout = timeout
        self._ttl = result_ttl
        self._allow_private = allow_private
        self._resolver = resolver
        self._slots = asyncio.Semaphore(max_running)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.on_change: Callable[[], None] | None = None

    @property
    def enabled(self) -> bool:
        return True

    def _now(self) -> float:
        return self._clock().timestamp()

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        if url in self._tasks:
            return _pending(url)
        row = await self._scans.get(url)
        now = self._now()
        if row is not None:
            if row["status"] == "running" and now - row["submitted_at"] < self._timeout + self._poll * 2:
                return _pending(url)
            if row["status"] != "running" and now - (row["finished_at"] or 0) < self._ttl:
                return _finished(row)
        if not await self._scans.claim(url, None if row is None else row["submitted_at"], now):
            return _pending(url)
        self._tasks[url] = asyncio.create_task(self._run(url), name=f"scan {url[:80]}")
        return _pending(url)

    async def _run(self, url: str) -> None:
        try:
            async with self._slots:
                await self._scan(url)
        except Exception:  # a scan must never take the process down; it is retried after its TTL
            log.exception("scan of %s failed", url[:200])
            with contextlib.suppress(Exception):
                await self._finish(url, "failed", None, "scan failed unexpectedly")
        finally:
            self._tasks.pop(url, None)
            if self.on_change is not None:
                self.on_change()  # wake clicks waiting on this URL, whatever the outcome

    async def _scan(self, url: str) -> None:
        try:
            await self._guard(url)
        except (NetguardError, ScanRefused) as exc:
            log.info("scan refused for %s: %s", url[:200], exc)
            await self._finish(url, "refused", None, f"not scanned: {exc}")
            return
        try:
            scan_id = await self._scanner.submit(url)
            await self._scans.set_scan_id(url, scan_id)
            report = await self._await_report(scan_id)
        except ScanError as exc:
            log.warning("scan of %s failed: %s", url[:200], exc)
            await self._finish(url, "refused" if isinstance(exc, ScanRefused) else "failed", None, str(exc))
            return
        verdict = Verdict.MALICIOUS if report.malicious else Verdict.CLEAN
        reason = _describe(report)
        await self._finish(url, "done", verdict, reason, report)
        try:
            expr = expression_of(url)
        except URLError:
            return
        await self._changes.record(NAME, [ExpressionChange(expr, Verdict.PENDING, verdict, report.categories, reason)],
                                   at=self._clock())

    async def _await_report(self, scan_id: str) -> ScanReport:
        deadline = time.monotonic() + self._timeout
        while True:
            await asyncio.sleep(self._poll)
            report = await self._scanner.result(scan_id)
            if report is not None:
                return report
            if time.monotonic() > deadline:
                raise ScanError(f"scan {scan_id} gave no result within {self._timeout:g} s")

    async def _guard(self, url: str) -> None:
        # The host a browser (and the scanner) would connect to, not what urlsplit reads around "\\@".
        try:
            target = parse(url)
        except InvalidURL as exc:
            raise ScanRefused(f"not a URL a browser opens: {exc.reason}") from None
        host = target.network_host.strip("[]")
        await resolve_public(host, target.effective_port, allow_private=self._allow_private, resolver=self._resolver)

    async def _finish(self, url: str, status: str, verdict: Verdict | None, reason: str,
                      report: ScanReport | None = None) -> None:
        await self._scans.finish(url, status, verdict.value if verdict else None, reason,
                                 ",".join(report.categories) if report else "", report.result_url if report else None,
                                 self._now())

    async def update(self) -> None:
        """Nothing to refresh: scans run when clicks ask for them."""

    async def close(self) -> None:
        await stop_tasks(list(self._tasks.values()))
        await self._scanner.close()


def _pending(url: str) -> VerdictResult:
    return VerdictResult(Verdict.PENDING, source=NAME, reasons=(_PENDING_REASON,))


def _finished(row: Row) -> VerdictResult | None:
    if row["verdict"] != Verdict.MALICIOUS.value:
        return None  # clean, refused or failed: no opinion, so the heuristics still apply
    return VerdictResult(
        verdict=Verdict.MALICIOUS,
        source=NAME,
        threat_types=tuple(t for t in (row["threat_types"] or "").split(",") if t) or ("malicious",),
        detection_method=DETECTION_METHOD,
        reasons=(f"scan found it malicious: {row['reason']}",),
        expression=row["url"],
    )


def _describe(report: ScanReport) -> str:
    parts = [f"score {report.score:g}"]
    if report.categories:
        parts.append("categories " + ", ".join(report.categories))
    if report.brands:
        parts.append("impersonates " + ", ".join(report.brands))
    if report.result_url:
        parts.append(report.result_url)
    return "; ".join(parts)

"""Per-recipient notification budgets: a burst of alerts is a few messages and one summary, never silence.

Each recipient (a rule's e-mail recipient list, a webhook URL) gets at most ``burst`` alert
notifications per ``window`` seconds. Past that, an alert's notification is held: it is listed in one
summary for that recipient and window, sent when the window ends, and the list grows while the
summary waits. The first notification of a new incident is never held (nor stopped by a rule's daily
e-mail limit): whatever else is going on, a new incident reaches its people at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.alerts import email as email_kind
from shared.alerts import webhooks
from shared.alerts.model import Alert, iso
from shared.escaping import html_text, plain_line
from shared.outbox import Outbox
from shared.store.database import Executor
from shared.store.notification_budget import NotificationBudgetStore

_KEEP_WINDOWS = 96  # a recipient's older windows are forgotten when a new one starts
_LISTED = 50  # a summary lists this many held alerts; the rest are counted
_URL_CHARS = 300  # a summary line shows this much of an alert's URL (the alert has all of it)


@dataclass(frozen=True, slots=True)
class Budget:
    burst: int = 10
    window: float = 900.0

    def window_of(self, at: float) -> float:
        return math.floor(at / self.window) * self.window

    async def take(self, tx: Executor, recipient: str, at: float, *, always: bool = False) -> bool:
        """Count one notification to ``recipient``; False (and nothing counted) when its budget is spent,
        unless ``always`` (a new incident's first notification), which is counted and never refused."""
        start = self.window_of(at)
        sent = await NotificationBudgetStore.sent(tx, recipient, start)
        if sent is None:
            await NotificationBudgetStore.open_window(tx, recipient, start,
                                                      forget_before=start - _KEEP_WINDOWS * self.window)
        elif sent >= self.burst and not always:
            return False
        await NotificationBudgetStore.count_sent(tx, recipient, start)
        return True

    async def hold(self, tx: Executor, outbox: Outbox, recipient: str, alert: Alert, at: float, *,
                   why: str, email_to: tuple[str, ...] = (), webhook: str | None = None) -> None:
        """List ``alert`` in the summary ``recipient`` gets when the current window ends."""
        start = self.window_of(at)
        await NotificationBudgetStore.count_held(tx, recipient, start)
        slot = f"summary:{recipient}:{start!r}"
        waiting = await outbox.pending_payload(slot, tx)
        held = list((waiting or {}).get("held", []))
        total = int((waiting or {}).get("held_total", 0)) + 1
        if len(held) < _LISTED:
            held.append(_line(alert, why))
        end = start + self.window
        if webhook is not None:
            document = {"event": "alerts.summary", "windowStart": _iso(start), "windowEnd": _iso(end),
                        "heldCount": total, "held": held}
            payload = webhooks.payload(webhook, "alerts.summary", document)
            kind = webhooks.KIND
        else:
            payload = _email(email_to, held, total, start, end)
            kind = email_kind.KIND
        payload |= {"held": held, "held_total": total}
        # Unordered (no key): a summary waiting for its window never holds up other deliveries.
        await outbox.enqueue(kind, payload, dedupe_key=slot, replace_pending=True, not_before=end, tx=tx)


def _iso(at: float) -> str:
    return iso(datetime.fromtimestamp(at, UTC)) or ""


def _line(alert: Alert, why: str) -> dict[str, Any]:
    return {"id": alert.id, "title": alert.title, "severity": alert.severity.value, "incidentId": alert.incident_id,
            "user": alert.account_upn or alert.account_object_id or "unknown", "url": alert.url[:_URL_CHARS],
            "at": iso(alert.first_activity), "why": why}


def _email(to: tuple[str, ...], held: list[dict[str, Any]], total: int, start: float, end: float) -> dict[str, Any]:
    # Outside values (titles, people, URLs) are data: one line each, escaped, addresses defanged.
    span = f"{_iso(start)} to {_iso(end)}"
    subject = f"[Summary] {total} more alert{'s' if total != 1 else ''} ({span})"
    fields = [(h["id"], h["severity"], h["title"], h["user"], h["url"], h["incidentId"]) for h in held]
    lines = [f"#{n} [{plain_line(sev)}] {plain_line(title)} - {plain_line(who)} - {plain_line(url)} (incident #{inc})"
             for n, sev, title, who, url, inc in fields]
    if total > len(held):
        lines.append(f"... and {total - len(held)} more")
    reasons = sorted({str(h["why"]) for h in held})
    text = "\n".join([f"{total} alert notification(s) were held between {span}:", *reasons, "", *lines]) + "\n"
    rows = "".join(f"<li>#{n} [{html_text(sev)}] {html_text(title)} — {html_text(who)} — {html_text(url)} "
                   f"(incident #{inc})</li>" for n, sev, title, who, url, inc in fields)
    more = f"<p>… and {total - len(held)} more</p>" if total > len(held) else ""
    body = (f"<html><body><h2>{html_text(subject)}</h2><p>{'<br>'.join(html_text(r) for r in reasons)}</p>"
            f"<ul>{rows}</ul>{more}</body></html>")
    return {"to": list(to), "subject": subject, "text": text, "html": body, "alert_id": None}

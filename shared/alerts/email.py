"""Alert e-mail: rendered when the alert is stored (HTML and text), sent over SMTP by the outbox.

The outbox item holds the finished message, so a later change of templates or settings never
changes what an alert already said. Sending uses aiosmtplib with STARTTLS, implicit TLS or neither,
and authenticates when a user name is configured. SMTP errors, refused connections and
timeouts are retried with backoff; only a message every recipient refused is given up.

Values from outside (the URL, the people, the verdict's reason) go through ``plain_line`` in the
text part and ``html_text`` in the HTML part: one line each, entities escaped, addresses defanged so
that no mail client offers the malicious URL as a link. The only link is ours (the alert's page).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from shared.alerts.model import Alert
from shared.escaping import html_text, plain_line
from shared.outbox import PermanentFailure, RetryLater
from shared.store.outbox import OutboxItem

KIND = "email"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # none | starttls | tls
    username: str = ""
    password: str = ""
    sender: str = "safelinks@localhost"
    timeout: float = 30.0


def _rows(alert: Alert) -> list[tuple[str, str]]:
    click = alert.details.get("click") or {}
    verdict = alert.details.get("verdict") or {}
    rows = [
        ("Severity", alert.severity.value),
        ("User", alert.account_upn or alert.account_object_id or "unknown"),
        ("URL", alert.url),
        ("When", alert.first_activity.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Where", alert.workload),
        ("Action", str(click.get("ActionType", ""))),
        ("Clicked through", "yes" if click.get("IsClickedThrough") else "no"),
        ("Verdict", f"{verdict.get('verdict', '')} ({verdict.get('source', '')})"),
        ("Why", str(verdict.get("reason", ""))),
        ("Sender", alert.sender or ""),
        ("Incident", f"#{alert.incident_id}" if alert.incident_id is not None else ""),
        ("Alert", f"#{alert.id} ({alert.key})"),
    ]
    return [(k, v) for k, v in rows if v]


def render(alert: Alert, recipients: tuple[str, ...], *, link: str | None = None) -> dict[str, Any]:
    """The outbox payload: subject, recipients, text and HTML bodies."""
    subject = f"[{alert.severity.value.capitalize()}] {alert.title}"
    rows = _rows(alert)
    text_lines = [plain_line(alert.title), "", plain_line(alert.description), ""]
    text_lines += [f"{k}: {plain_line(v)}" for k, v in rows]
    if alert.recommended_actions:
        text_lines += ["", "What to do: " + plain_line(alert.recommended_actions)]
    if link:
        text_lines += ["", f"Details: {link}"]
    table = "".join(
        f"<tr><th align='left' style='padding-right:12px'>{html_text(k)}</th><td>{html_text(v)}</td></tr>"
        for k, v in rows
    )
    body = f"<html><body><h2>{html_text(alert.title)}</h2><p>{html_text(alert.description)}</p><table>{table}</table>"
    if alert.recommended_actions:
        body += f"<p><b>What to do:</b> {html_text(alert.recommended_actions)}</p>"
    if link:
        body += f"<p><a href='{html.escape(link, quote=True)}'>Alert details</a></p>"
    body += "</body></html>"
    return {
        "to": list(recipients),
        "subject": subject,
        "text": "\n".join(text_lines) + "\n",
        "html": body,
        "alert_id": alert.id,
        "link": link,
    }


def build_message(payload: dict[str, Any], sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(payload["to"])
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message["X-SafeLinks-Alert"] = str(payload.get("alert_id", ""))
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


class EmailSender:
    """The outbox handler for kind ``email``."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def __call__(self, item: OutboxItem) -> dict[str, Any] | None:
        cfg = self.config
        if not cfg.host:
            raise RetryLater("no SMTP server configured (SAFELINKS_SMTP_HOST)", after=300)
        message = build_message(item.payload, cfg.sender)
        # One Message-ID per outbox item, the same on every attempt: a copy re-sent after a worker died
        # between the server's "250 OK" and the outbox's "done" is recognisably the same message.
        del message["Message-ID"]
        message["Message-ID"] = f"<safelinks.outbox.{item.id}@{cfg.sender.rpartition('@')[2] or 'localhost'}>"
        try:
            errors, response = await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username or None,
                password=cfg.password or None,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                timeout=cfg.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"every recipient refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Even a 5xx (bad credentials, a full mailbox) is kept and retried: fixing the
            # configuration must not lose the alerts raised meanwhile.
            raise RetryLater(f"SMTP {exc.code}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}") from exc
        return {"response": response, "refused": sorted(errors)}

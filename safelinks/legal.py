"""``/privacy`` and ``/terms``: the pages the Teams app manifest points at.

Each is either a redirect to the organisation's own page (``SAFELINKS_PRIVACY_STATEMENT=https://…``),
a text file of the organisation's shown as a page (paragraphs separated by blank lines), or the
built-in text, which states what this deployment keeps and for how long from its own settings.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from proxy.pages import Pages, redirect
from shared.config import Settings

_PAGES: web.AppKey[dict[str, web.Response | str]] = web.AppKey("legal_pages", dict)


def setup_legal(app: web.Application, settings: Settings) -> None:
    """Add ``/privacy`` and ``/terms``; files are read once, here, so a missing one fails the start."""
    pages = Pages()
    made: dict[str, web.Response | str] = {}
    for path, title, source, builtin in (
        ("/privacy", "Privacy statement", settings.privacy_statement, privacy_text(settings)),
        ("/terms", "Terms of use", settings.terms_of_use, TERMS_TEXT),
    ):
        if source.startswith(("https://", "http://")):
            made[path] = source
        else:
            text = Path(source).read_text(encoding="utf-8") if source else builtin
            made[path] = pages.render("legal.html", title=title, paragraphs=paragraphs(text))
        app.router.add_get(path, _answer)
    app[_PAGES] = made


async def _answer(request: web.Request) -> web.Response:
    page = request.app[_PAGES][request.path]
    if isinstance(page, str):
        return redirect(302, page)
    # A prepared Response cannot be sent twice: answer with a copy of the rendered page.
    return web.Response(status=200, body=page.body, headers=page.headers.copy())


def paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(block.split()) for block in text.strip().split("\n\n") if block.strip())


def privacy_text(settings: Settings) -> str:
    ip = ("anonymised (IPv4 /24, IPv6 /48)" if settings.anonymize_ip else "in full")
    return f"""\
This service protects the links in the Microsoft Teams chats and channels it has been added to. It is
run by your organisation on its own servers; no data goes to the authors of the software.

It reads every message in those conversations. For a message that holds links it keeps, as evidence:
the sender, the conversation, the time, the links and the first {settings.evidence_snippet_chars}
characters of the text. Messages without links are not kept. Evidence is deleted after
{settings.message_retention_days} days.

When you open a protected link it records the click: who clicked (unless your Safe Links policy turns
click tracking off), when, the link, what the service decided, your browser's name and your network
address, {ip}. Clicks are deleted after {settings.click_retention_days} days.

When a click or a link looks dangerous it raises an alert for your security team. Alerts and incidents
are kept for {settings.alert_retention_days} days.

Who can see it: your organisation's security administrators and the members of its security channel.
Link checks may send the address of a link (never who clicked it) to the threat intelligence services
your organisation has configured.

You can ask your administrators for a copy of what is kept about you, or for its erasure."""


TERMS_TEXT = """\
This service is provided by your organisation to protect you from malicious links in Microsoft Teams.
Links in messages are answered with checked copies; opening one may show a warning instead of the site.
Do not try to bypass the warnings or to misuse the service.

The warnings are a safeguard, not a guarantee: a site that is not known to be dangerous may still be.
Report anything suspicious to your security team.

The software is teams-safelinks, open source under the MIT licence, provided "as is", without warranty
of any kind. Questions about this service go to your organisation's IT department."""

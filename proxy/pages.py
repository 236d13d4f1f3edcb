"""The pages a person sees: rendered with autoescaping, served with headers that lock them down."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape
from multidict import CIMultiDict

from shared.urls import HostKind, URLError, display_host, parse

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_CSP_FORM = "form-action 'self'"


@lru_cache(maxsize=1024)
def csp_continuing_to(target: str) -> str:
    """The CSP of a page whose form ("Continue anyway") leads on to ``target``.

    Browsers hold the redirect that answers a form to the page's ``form-action`` too, so with ``'self'``
    alone Chromium records the click-through and then refuses to leave the warning. (Such a page also
    keeps same-origin referrers, so that the form's ``Origin`` is ours and not "null"; the redirect
    itself says no-referrer, so the destination never sees the wrapped link.) The target's own
    origin is added — only for this page, whose form action is ours; where CSP cannot name the host
    (an IPv6 literal, a trailing dot) its scheme stands in.
    """
    try:
        url = parse(target)
    except URLError:
        return CSP
    if url.kind is HostKind.IPV6 or url.host.endswith("."):
        source = f"{url.scheme}:"
    else:
        source = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port is not None else "")
    return CSP.replace(_CSP_FORM, f"{_CSP_FORM} {source}")


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Branding:
    org_name: str | None
    logo_url: str | None
    custom_text: str | None


class _InliningLoader(jinja2.PackageLoader):
    """Expands ``{% include "…" %}`` into the including template when it is loaded.

    A runtime include builds a new context on every render (a third of a warning page's cost); the
    partials here are static, so they are pasted in once and the pages stay written only once.
    """

    _INCLUDE = re.compile(r'{%-?\s*include\s+"([^"]+)"\s*-?%}')

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool] | None]:
        source, filename, uptodate = super().get_source(environment, template)

        def paste(match: re.Match[str]) -> str:
            return self.get_source(environment, match.group(1))[0]

        return self._INCLUDE.sub(paste, source), filename, uptodate


class Pages:
    """Renders the proxy's templates."""

    def __init__(self, *, keep: int = 1024) -> None:
        self._keep = keep
        self._env = jinja2.Environment(
            loader=_InliningLoader("proxy", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates ship with the package; never stat them per request
        )
        self._templates: dict[str, jinja2.Template] = {}
        # The icons never change: render their SVG once instead of importing the macro on every page.
        icon = getattr(self._env.get_template("_icons.html").module, "icon")  # noqa: B009 (a template macro)
        kinds = ("danger", "blocked", "pending", "done", "shield")
        self._env.globals["icons"] = {kind: Markup(str(icon(kind))) for kind in kinds}
        # Stands for the click-through token while a page is rendered for the cache; random per process
        # so that no address or text shown on a page can contain it.
        self._slot = f"slot{secrets.token_hex(16)}"
        self._rendered: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def render(self, template: str, *, status: int = 200, branding: Branding | None = None,
               token: str | None = None, **context: Any) -> web.Response:
        """The page as a response. ``token`` is the only per-click value a page holds.

        A page is a pure function of its inputs, and the same link shows the same warning to everyone
        who clicks it, so the rendered text is kept (up to ``keep`` pages, oldest dropped first) with a
        slot where the token goes: a repeat costs a join instead of a template run.
        """
        branding = branding or _NO_BRANDING
        key = _key(template, branding, token is not None, context)
        parts = self._rendered.get(key) if key is not None else None
        if parts is None:
            compiled = self._templates.get(template)
            if compiled is None:
                compiled = self._templates[template] = self._env.get_template(template)
            html = compiled.render(branding=branding, token=self._slot if token else token, **context)
            parts = tuple(html.split(self._slot)) if token else (html,)
            if key is not None and len(html) <= _KEEP_PAGE_CHARS:
                if len(self._rendered) >= self._keep:
                    del self._rendered[next(iter(self._rendered))]
                self._rendered[key] = parts
        body = str(escape(token)).join(parts) if token else parts[0]
        return web.Response(status=status, body=body.encode("utf-8"), headers=_HTML_HEADERS.copy())

    @property
    def kept(self) -> int:
        """How many rendered pages are kept."""
        return len(self._rendered)

    def error(self, status: int, title: str, message: str, *, url: str | None = None,
              branding: Branding | None = None) -> web.Response:
        return self.render("error.html", status=status, title=title, message=message,
                           url=url, host=display_host(url), branding=branding)


_NO_BRANDING = Branding(None, None, None)
# Pages showing very long addresses (up to 8 KB, often from rejected links) are not kept: the kept
# pages stay within a few megabytes whatever arrives.
_KEEP_PAGE_CHARS = 16_384


def _key(template: str, branding: Branding, tokened: bool, context: dict[str, Any]) -> tuple[Any, ...] | None:
    """What a rendering depends on, hashable; None when a value cannot be part of a key (not kept).

    Names travel with their values, so two call sites passing the same values in another order only
    keep two copies of one page.
    """
    key = (template, branding, tokened,
           *((k, tuple(v) if isinstance(v, list) else v) for k, v in context.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


# Every answer of the proxy is built with these headers. They are set where responses are made,
# not by a middleware: a middleware layer costs about 5 µs on every click.
_PAGE_HEADERS = CIMultiDict(SECURITY_HEADERS)
_HTML_HEADERS = CIMultiDict({**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8"})


def redirect(status: int, location: str) -> web.Response:
    """A redirect carrying the protective headers."""
    headers = _PAGE_HEADERS.copy()
    headers["Location"] = location
    return web.Response(status=status, headers=headers)

"""The pages a person sees: rendered with autoescaping, served with headers that lock them down."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup
from multidict import CIMultiDict

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
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

    def __init__(self) -> None:
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

    def render(self, template: str, *, status: int = 200, branding: Branding | None = None,
               **context: Any) -> web.Response:
        compiled = self._templates.get(template)
        if compiled is None:
            compiled = self._templates[template] = self._env.get_template(template)
        html = compiled.render(
            branding=branding or Branding(None, None, None), **context
        )
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8",
                            headers=_PAGE_HEADERS.copy())

    def error(self, status: int, title: str, message: str, *, url: str | None = None,
              branding: Branding | None = None) -> web.Response:
        return self.render("error.html", status=status, title=title, message=message,
                           url=url, host=host_of(url), branding=branding)


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


# Every answer of the proxy is built with these headers. They are set where responses are made,
# not by a middleware: a middleware layer costs about 5 µs on every click.
_PAGE_HEADERS = CIMultiDict(SECURITY_HEADERS)


def redirect(status: int, location: str) -> web.Response:
    """A redirect carrying the protective headers."""
    headers = _PAGE_HEADERS.copy()
    headers["Location"] = location
    return web.Response(status=status, headers=headers)

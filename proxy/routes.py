"""The click-time proxy's routes: the click, the click-through, health, metrics and static files."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from functools import lru_cache
from importlib import resources

from aiohttp import web
from yarl import URL

from proxy import tokens
from proxy.agents import is_automated, sends_fetch_metadata
from proxy.decision import Outcome, Page, decide
from proxy.pages import SECURITY_HEADERS, Branding, Pages, csp_continuing_to, redirect
from proxy.verified import VerifiedLinks
from proxy.why import why
from shared.clicks import ActionType, Click, ReportIds, anonymize_ip
from shared.events import ClickRecorded
from shared.linkparams import BadLink, check_target
from shared.metrics import Counter, Histogram, Labels
from shared.netguard import is_loopback_host
from shared.policy import SafeLinksPolicy
from shared.services import SERVICES, Services
from shared.signing import LinkContext
from shared.store import DuplicateKey, StoreError
from shared.store.health import ping
from shared.urllists.tenant_list import TablAction
from shared.urls import URLError, display_host
from shared.verdicts import VerdictResult

log = logging.getLogger("safelinks.proxy")
PAGES: web.AppKey[Pages] = web.AppKey("pages", Pages)
LATENCY: web.AppKey[Histogram] = web.AppKey("click-latency", Histogram)
REPORT_IDS: web.AppKey[ReportIds] = web.AppKey("report-ids", ReportIds)
LINKS: web.AppKey[VerifiedLinks] = web.AppKey("verified-links", VerifiedLinks)
_SCAN_REFRESH_SECONDS = 5
_STATIC = {"safelinks.css": "text/css", "safelinks.js": "text/javascript"}
_PLAIN_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _branding(policy: SafeLinksPolicy) -> Branding:
    b = policy.branding
    return Branding(b.name if b else None, str(b.logo_url) if b and b.logo_url else None,
                    policy.custom_notification_text)


def _client_ip(request: web.Request, services: Services) -> str | None:
    if services.settings.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            # The nearest proxy appends the address it saw: the rightmost entry is the one we trust.
            return forwarded.split(",")[-1].strip() or request.remote
    return request.remote


async def click(request: web.Request) -> web.StreamResponse:
    """GET (or HEAD) /v1/url: decide, record, answer."""
    services = request.app[SERVICES]
    pages = request.app[PAGES]
    started = time.perf_counter()
    try:
        link = request.app[LINKS].admit(request.rel_url.raw_query_string)
    except BadLink as exc:
        return _reject(request, services, pages, exc)
    ctx = link.context
    max_age = services.settings.link_max_age_days
    if max_age and ctx.issued_at and services.clock().timestamp() - ctx.issued_at > max_age * 86400:
        return _reject(request, services, pages, BadLink(
            410, "This link has expired",
            f"Links are valid for {max_age} days after they were shared. Ask the sender for a fresh one.",
            link.url))
    why_not = is_automated(request.method, request.headers.get("User-Agent"),
                           request.headers.get("Sec-Purpose") or request.headers.get("Purpose"))
    if why_not is not None:
        services.metrics.counter("safelinks_automated_requests_total",
                                 "Previews, prefetches and scanners answered without counting a click.").inc(
            reason=why_not.split(" (")[0])
        return pages.render("preview.html")

    pending = services.pending_changes()  # an admin change made elsewhere applies to this very click
    if pending is not None:
        await pending
    resolution = services.policies.resolve(ctx.recipient)
    policy = resolution.policy
    now = services.clock()
    tenant = services.tenant_list.match(link.target, now)
    # A cached verdict (never a pending one) answers without entering a coroutine: the common case.
    verdict = None if tenant is not None else services.verdicts.cached(link.url)
    error_status = 503
    if tenant is None and verdict is None:
        try:
            if policy.scan_urls:
                verdict = await services.verdicts.wait_for(link.url, policy.scan_wait_seconds)
            else:
                verdict = await services.verdicts.check(link.url)
        except URLError as exc:
            # A signed link to an address that has no canonical form: a real click, answered with the error page.
            log.warning("cannot check %r: %s", link.url[:200], exc)
            error_status = 400
        except Exception:  # fail closed: an answer we could not make is an error page, not a redirect
            log.exception("verdict lookup failed for %s", link.host)
    outcome = decide(policy, ctx.workload, tenant.action if tenant else None, verdict)
    record = _click(services, request, ctx, link.url, outcome, verdict, policy, now)
    try:
        await _record(services, record)
    except StoreError as exc:
        log.error("click not recorded, answering with an error page: %s", exc)
        return pages.error(503, "Safe Links can't check this link right now",
                           "The link could not be checked. Try again in a minute.", url=link.url,
                           branding=_branding(policy))
    services.bus.publish(ClickRecorded(record))
    request.app[LATENCY].observe(time.perf_counter() - started)
    if outcome.page is Page.REDIRECT:
        return redirect(302, link.location)
    return _page(services, pages, outcome, record, verdict, policy, error_status)


def _click(services: Services, request: web.Request, ctx: LinkContext, url: str, outcome: Outcome,
           verdict: VerdictResult | None, policy: SafeLinksPolicy, now: datetime) -> Click:
    track = policy.track_clicks
    ip = _client_ip(request, services)
    if services.settings.anonymize_ip:
        ip = anonymize_ip(ip)
    threats = verdict.threat_types if verdict and outcome.source == verdict.source else ()
    methods = (verdict.detection_method,) if verdict and verdict.detection_method and threats else ()
    if outcome.source == "tenant-block":
        methods = ("TenantBlocked",)
    return Click(
        report_id=request.app[REPORT_IDS].new(),
        timestamp=now,
        url=url,
        action_type=outcome.action,
        workload=ctx.workload,
        verdict=outcome.verdict.value,
        # TrackClicks off: the click still counts (for alerts on the URL) but carries nobody's identity.
        account_upn=ctx.recipient if track else None,
        account_object_id=ctx.recipient_id if track else None,
        network_message_id=ctx.message,
        threat_types=threats,
        detection_methods=methods,
        ip_address=ip if track else None,
        url_chain=(url,),
        tenant_id=ctx.tenant,
        team_id=ctx.team,
        channel_id=ctx.channel,
        conversation_id=ctx.conversation,
        message_id=ctx.message,
        sender=ctx.sender,
        recipient=ctx.recipient,
        user_agent=_user_agent(request) if track else None,
        policy=policy.name,
        verdict_source=outcome.source,
    )


def _user_agent(request: web.Request) -> str:
    """The User-Agent as stored: at most 512 characters, and writable as UTF-8.

    Header bytes that are not UTF-8 arrive as lone surrogates, which no store can encode: left in,
    one such click would fail its write, and every other click in the same batch with it.
    """
    agent = (request.headers.get("User-Agent") or "")[:512]
    if agent.isascii():  # nearly every browser: one C-speed scan
        return agent
    return agent.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


async def _record(services: Services, record: Click) -> None:
    """Write the click before answering; with ``db_unavailable=wait`` keep trying for a while."""
    deadline = 0.0  # set on the first failure: the common path never reads the clock for it
    delay = 0.1
    retried = False
    while True:
        try:
            await services.clicks.record(record)
        except DuplicateKey:
            if not retried:
                raise
            # An earlier try did commit; only its answer was lost with the connection. Stored once: done.
            return
        except StoreError:
            if not retried:
                deadline = time.monotonic() + (15.0 if services.settings.db_unavailable == "wait" else 0.0)
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            retried = True
            continue
        else:
            services.metrics.counter("safelinks_clicks_total", "Clicks recorded, by action.").inc_key(
                _click_labels(record.action_type, record.is_clicked_through))
            return


@lru_cache(maxsize=64)
def _click_labels(action: ActionType, clicked_through: bool) -> Labels:
    return Counter.key(action=action.value, clicked_through=str(clicked_through).lower())


def _page(services: Services, pages: Pages, outcome: Outcome, record: Click,
          verdict: VerdictResult | None, policy: SafeLinksPolicy, error_status: int) -> web.StreamResponse:
    """Every answer to a counted click but the plain redirect."""
    branding = _branding(policy)
    url, host = record.url, display_host(record.url)
    token = (tokens.issue(services.keyring, record.report_id, services.settings.click_through_token_ttl,
                          now=record.timestamp.timestamp())
             if outcome.click_through else None)
    if outcome.page is Page.WARNING:
        page = pages.render("warning.html", branding=branding, url=url, host=host, token=token,
                            verdict=outcome.verdict.value,
                            why=why(verdict),
                            notice=verdict.notice if verdict else None)
    elif outcome.page is Page.TENANT_BLOCKED:
        return pages.render("blocked.html", branding=branding, url=url, host=host, token=None)
    elif outcome.page is Page.SCAN_IN_PROGRESS:
        page = pages.render("scan.html", branding=branding, url=url, host=host, token=token,
                            refresh_seconds=_SCAN_REFRESH_SECONDS,
                            continue_label="Continue without waiting (not recommended)")
    else:
        return pages.error(error_status, "This link can't be opened right now",
                           "Something went wrong while checking this link, so it was not opened.",
                           url=url, branding=branding)
    if token is not None:
        page.headers["Content-Security-Policy"] = csp_continuing_to(url)
        page.headers["Referrer-Policy"] = "same-origin"  # see base.html: the form's Origin must not be null
    return page


def _reject(request: web.Request, services: Services, pages: Pages, exc: BadLink) -> web.Response:
    services.metrics.counter("safelinks_rejected_requests_total", "Requests refused as bad input.").inc(
        status=str(exc.status))
    log.warning("rejected %s %s from %s: %s", request.method, request.path, request.remote, exc.message)
    return pages.error(exc.status, exc.title, exc.message, url=exc.url)


def _foreign(request: web.Request, services: Services) -> str | None:
    """Why a click-through POST did not come from our own warning page, or None when it did.

    ``Origin: null`` is what a sandboxed frame, a ``data:`` page or a cross-origin redirect sends: never
    ours. A browser that sends Fetch Metadata always sends ``Sec-Fetch-Site`` to a secure or loopback
    origin, so its absence there means the form was not submitted by that browser (a scanner borrowing
    its user agent). Browsers without Fetch Metadata are judged by ``Origin`` alone.
    """
    public = services.settings.public_url
    origin = request.headers.get("Origin")
    if origin is not None and origin not in (public, f"{request.scheme}://{request.host}"):
        return f"Origin {origin[:100]!r}"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site {site[:40]!r}"
    if sends_fetch_metadata(request.headers.get("User-Agent")) and _trustworthy(public):
        return "no Sec-Fetch-Site from a browser that always sends it"
    return None


@lru_cache(maxsize=8)
def _trustworthy(public_url: str) -> bool:
    # Browsers send Fetch Metadata only to potentially trustworthy origins: https, and loopback over http.
    url = URL(public_url)
    return url.scheme == "https" or is_loopback_host(url.raw_host or "")


async def click_through(request: web.Request) -> web.StreamResponse:
    """POST /v1/url/continue: the user chose "Continue anyway"; the token says which view."""
    services = request.app[SERVICES]
    pages = request.app[PAGES]
    foreign = _foreign(request, services)
    if foreign is not None:
        log.info("click-through refused: %s", foreign)
        return _reject(request, services, pages, BadLink(403, "This request was refused",
                                                         "The request did not come from this Safe Links page."))
    if request.content_length is not None and request.content_length > 4096:
        return _reject(request, services, pages, BadLink(413, "This request was refused", "The request is too large."))
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not token:
        return _reject(request, services, pages, BadLink(400, "This request was refused", "The request is incomplete."))
    try:
        report_id = tokens.verify(services.keyring, token, now=services.clock().timestamp())
    except tokens.TokenError as exc:
        expired = "expired" in str(exc)
        message = ("This page has expired. Open the link again to get a fresh check."
                   if expired else "This request could not be verified.")
        return _reject(request, services, pages, BadLink(410 if expired else 403, "This request was refused", message))
    view = await services.clicks.get_view(report_id)
    if view is None or view.action_type not in (ActionType.CLICK_BLOCKED, ActionType.URL_SCAN_IN_PROGRESS):
        return _reject(request, services, pages, BadLink(403, "This request was refused",
                                                         "There is no warning page to continue from."))
    target = check_target(view.url)
    await services.current()
    policy = services.policies.resolve(view.recipient).policy
    tenant = services.tenant_list.match(target, services.clock())
    # The decision is made again now: a policy or block-list change since the warning wins.
    if not policy.allow_click_through or (tenant is not None and tenant.action is TablAction.BLOCK):
        return _reject(request, services, pages, BadLink(403, "This website can't be opened",
                                                         "Your organization does not allow opening it.", view.url))
    ip = _client_ip(request, services)
    if services.settings.anonymize_ip:
        ip = anonymize_ip(ip)
    through = view.clicked_through(services.clock(), ip if policy.track_clicks else None,
                                   _user_agent(request) if policy.track_clicks else None)
    try:
        await _record(services, through)
    except DuplicateKey:
        return _reject(request, services, pages, BadLink(409, "This page was already used",
                                                         "Open the link again to get a fresh check.", view.url))
    except StoreError as exc:
        log.error("click-through not recorded: %s", exc)
        return pages.error(503, "Safe Links can't open this link right now", "Try again in a minute.", url=view.url)
    services.bus.publish(ClickRecorded(through))
    return redirect(303, target.location)


async def continue_get(request: web.Request) -> web.Response:
    """A GET of the click-through does nothing: link scanners must never click through."""
    services = request.app[SERVICES]
    return _reject(request, services, request.app[PAGES],
                   BadLink(405, "This page can't be opened directly", "Use the button on the warning page."))


async def back(request: web.Request) -> web.Response:
    return request.app[PAGES].render("back.html")


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        await ping(services.db)
        db_ok = True
    except Exception:
        db_ok = False
    # Status words only: error texts (which can hold a source's address) are for the CLI and the log.
    sources: dict[str, str] = {}
    for name, report in services.verdicts.health_report().items():
        sources[name] = "ok" if report.get("ok") else "failing"
        detail = report.get("detail")
        if isinstance(detail, dict):
            for part, state in detail.items():
                if isinstance(state, dict) and "ok" in state:
                    word = "held" if state.get("held") else "failing"
                    sources[f"{name}/{part}"] = "ok" if state["ok"] else word
    body = {"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "failing",
            "verdict_sources": sources}
    return web.json_response(body, status=200 if db_ok else 503, headers=_PLAIN_HEADERS)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[SERVICES].metrics.render(), content_type="text/plain",
                        charset="utf-8", headers=_PLAIN_HEADERS)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None:
        return request.app[PAGES].error(404, "Not found", "There is nothing here.")
    body = resources.files("proxy").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=kind,
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"})


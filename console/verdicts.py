"""Verdicts: the administrators' own verdicts (set, clear) and "check a URL" — what a click on it
would meet: the verdict with its source and reasons, the policy, the list entry, the answer."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from console.filters import PAGE_SIZE, FilterError, page_number, text
from console.guard import changer, viewer
from console.incidents import actor_of
from console.render import Blanks, see_other
from console.state import CONSOLE
from proxy.decision import decide
from shared.clicks import Workload
from shared.urllists.tenant_list import TablError
from shared.urls import URLError
from shared.verdicts import Verdict

SETTABLE = (Verdict.MALICIOUS, Verdict.SUSPICIOUS, Verdict.CLEAN)


async def _render(request: web.Request, *, status: int = 200, error: str | None = None, check_error: str | None = None,
                  form: dict[str, str] | None = None, checked: dict[str, object] | None = None) -> web.Response:
    console = request.config_dict[CONSOLE]
    try:
        page = page_number(request)
        contains = text(request, "q", limit=250)
    except FilterError:
        page, contains = 1, None
    verdicts, more = await console.services.admin_verdicts.page(contains=contains, top=PAGE_SIZE,
                                                                skip=(page - 1) * PAGE_SIZE)
    # The notice is built here from known words; only the target, as entered, comes from the address.
    verdict, target = request.query.get("done", ""), request.query.get("target", "")[:300]
    done = None
    if target and verdict in {v.value for v in (*SETTABLE, Verdict.UNKNOWN)}:
        done = f"Verdict on {target} {'cleared' if verdict == Verdict.UNKNOWN.value else f'set to {verdict}'}."
    return console.templates.page(
        "verdicts.html", request, status=status, error=error, check_error=check_error, form=Blanks(form or {}),
        checked=checked, verdicts=verdicts, page=page, more=more, settable=[v.value for v in SETTABLE],
        workloads=[w.value for w in Workload], done=done)


@viewer
async def verdicts_page(request: web.Request) -> web.StreamResponse:
    url = request.query.get("check", "").strip()
    if not url:
        return await _render(request)
    return await check_url(request, url)


async def check_url(request: web.Request, url: str) -> web.Response:
    console = request.config_dict[CONSOLE]
    services = console.services
    upn = request.query.get("user", "").strip()[:320] or None
    try:
        workload = Workload.parse(request.query.get("workload") or "Teams")
        if len(url) > 8192:
            raise URLError("the URL is longer than 8192 characters")
        verdict = await services.verdicts.check(url)
        entry = services.tenant_list.index.match(url, console.clock())  # a look, not a use: no "last used"
    except (URLError, TablError, ValueError) as exc:
        return await _render(request, status=400, check_error=f"cannot check this URL: {exc}")
    resolution = services.policies.resolve(upn)
    outcome = decide(resolution.policy, workload, entry.action if entry else None, verdict)
    checked = {"url": url, "verdict": verdict, "entry": entry, "resolution": resolution, "outcome": outcome,
               "user": upn, "workload": workload.value}
    return await _render(request, checked=checked)


@changer()
async def set_verdict(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    services = console.services
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("target", "verdict", "threats", "reason", "do")}
    actor = actor_of(request)
    verdict = Verdict.UNKNOWN if values["do"] == "clear" else next(
        (v for v in SETTABLE if v.value == values["verdict"]), None)
    if verdict is None:
        return await _render(request, status=400, error="pick a verdict", form=values)
    threats = tuple(t.strip() for t in values["threats"].split(",") if t.strip())
    if len(values["reason"]) > 1000 or len(threats) > 20 or any(len(t) > 64 for t in threats):
        return await _render(request, status=400, error="the reason or the threat types are too long", form=values)
    try:
        change = await services.admin_verdicts.set(values["target"], verdict, threat_types=threats,
                                                   reason=values["reason"], set_by=actor.id,
                                                   now=console.now(), actor=actor)
    except (URLError, ValueError) as exc:
        return await _render(request, status=400, error=f"cannot use {values['target']!r}: {exc}", form=values)
    services.verdicts.invalidate()
    if change is not None:
        services.bus.publish(change)  # the alert engine looks back at the clicks of the last 48 hours
    return see_other(f"/console/verdicts?{urlencode({'done': verdict.value, 'target': values['target'][:300]})}")

"""Policies: the Safe Links policies in force, the rules that assign them, and which one a user gets."""

from __future__ import annotations

from aiohttp import web

from console.guard import viewer
from console.state import CONSOLE
from shared.policy.presets import BUILT_IN_PROTECTION, PRESETS


@viewer
async def policies_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    policies = console.services.policies
    user = request.query.get("user", "").strip()[:320]
    resolution = policies.resolve(user) if user else None
    presets = [(name, getattr(policies, attr)) for name, attr in (("Strict preset", "strict"),
                                                                 ("Standard preset", "standard"))]
    shown = [BUILT_IN_PROTECTION, *[p for n, p in PRESETS.items() if n != BUILT_IN_PROTECTION.name],
             *policies.policies.values()]
    return console.templates.page(
        "policies.html", request, policies=[p.settings() for p in shown],
        rules=sorted(policies.rules, key=lambda r: r.priority), presets=presets, resolution=resolution,
        user=user, policy_file=str(console.services.settings.policy_file or ""))

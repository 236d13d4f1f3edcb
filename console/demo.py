"""The demo scenario for a fresh install: a Teams message with a malicious link, played through the real
proxy and alert engine, so a newcomer sees an incident's story without Teams at hand.

The console stores the message as the bot would have (the bot is what normally keeps it) and gives the
link wrapped for a demo recipient; everything after that — the warning page, "Continue anyway", the
click log, the alerts, the incident — is the service's own work. The link's host is on the demo feed
under the reserved ``.invalid`` top-level domain: nothing real is ever opened. Offered only while no
alert exists and the demo feed is loaded.
"""

from __future__ import annotations

from aiohttp import web

from console.guard import changer, viewer
from console.incidents import actor_of
from console.render import see_other
from console.state import CONSOLE, Console
from shared.clicks import Workload
from shared.evidence import TeamsMessageEvidence
from shared.signing import LinkContext
from shared.store import audit
from shared.store.alerts import AlertStore
from shared.store.messages import EvidenceStore
from shared.urls import URLError

DEMO_URL = "http://malicious.safelinks.invalid/reset-password"
CONVERSATION = "19:safelinks-demo@thread.v2"
SENDER, SENDER_UPN = "Alice (demo)", "alice@contoso.example"
RECIPIENT, RECIPIENT_ID = "bob@contoso.example", "demo-bob"
TEXT = f"Your password expires today, reset it here: {DEMO_URL}"


async def offered(console: Console) -> bool:
    """Whether the Overview offers the demo: nothing has been alerted yet and the demo URL is known bad."""
    if await AlertStore(console.services.db).any_stored():
        return False
    try:
        return (await console.services.verdicts.check(DEMO_URL)).verdict.risky
    except URLError:
        return False


@changer()
async def post_message(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    if not await offered(console):
        return console.templates.page("refused.html", request, status=409, title="No demo here",
                                      message="The demo is offered on a fresh install only (no alerts yet, the "
                                              "demo feed loaded); nothing was changed.")
    now = console.clock()
    message_id = str(int(now.timestamp() * 1000))
    evidence = TeamsMessageEvidence(
        conversation_id=CONVERSATION, message_id=message_id, thread_id=CONVERSATION, thread_type="Chat",
        thread_sub_type="groupChat", received_at=now, urls=(DEMO_URL,), tenant_id="demo",
        sender_id="demo-alice", sender_name=SENDER, sender_upn=SENDER_UPN, snippet=TEXT)
    async with console.services.db.transaction() as tx:
        await EvidenceStore(console.services.db).save(evidence, tx=tx)
        await audit.record(tx, actor_of(request), "demo.message", f"{CONVERSATION} {message_id}",
                           "demo Teams message with a malicious link", at=now.timestamp())
    return see_other(f"/console/demo?message={message_id}")


@viewer
async def demo_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    message_id = request.query.get("message", "")
    if not message_id.isdigit() or len(message_id) > 20:
        return see_other("/console/")
    evidence = await EvidenceStore(console.services.db).get(CONVERSATION, message_id)
    if evidence is None:
        return see_other("/console/")
    context = LinkContext(workload=Workload.TEAMS, tenant="demo", conversation=CONVERSATION, message=message_id,
                          sender=SENDER_UPN, recipient=RECIPIENT, recipient_id=RECIPIENT_ID)
    link = console.services.signer.wrap(DEMO_URL, context, now=console.clock())
    return console.templates.page("demo.html", request, evidence=evidence, link=link, recipient=RECIPIENT)

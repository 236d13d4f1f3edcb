"""Privacy: export everything about a person; erase (pseudonymise) them keeping counts and incidents; retention."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import notify
from bot.alert_ports import BotEvidence
from bot.cards import CardLink, reply_card
from console.sessions import Role, Sessions
from shared.alerts.actions import Actor
from shared.alerts.system import Alerting, build_alerting
from shared.clicks import ActionType, Workload
from shared.config import Settings
from shared.evidence import TeamsMessageEvidence
from shared.outbox import Outbox
from shared.privacy import PrivacyError, RetentionPolicy, erase_subject, export_subject, find_subject, pseudonym, purge
from shared.services import Services, open_services
from shared.signing import LinkContext
from shared.store import Database, audit
from shared.store.conversations import ConversationStore, StoredUser
from shared.store.messages import EvidenceStore
from shared.verdicts.model import Verdict
from tests.alerts_harness import click
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADELE, GRADY = "adele@contoso.com", "grady@contoso.com"
KEY = b"k" * 32


@dataclass
class World:
    services: Services
    alerting: Alerting
    clock: FakeClock

    @property
    def db(self) -> Database:
        return self.services.db


@pytest.fixture
async def world(make_settings: Callable[..., Settings], db_url: str) -> AsyncIterator[World]:
    """Adele and Grady each clicked a malicious link (Adele also clicked through); Adele sent a message."""
    clock = FakeClock(T0)
    settings = make_settings(database_url=db_url, alert_email_to="soc@contoso.com", smtp_host="127.0.0.1")
    async with open_services(settings, clock=clock, background=False) as services:
        outbox = Outbox(services.db, clock=clock)
        system = build_alerting(services, outbox, evidence=BotEvidence(services.db))
        await EvidenceStore(services.db).save(TeamsMessageEvidence(
            conversation_id="19:chat-1@unq.gbl.spaces", message_id="1700000000009",
            thread_id="19:chat-1@unq.gbl.spaces",
            thread_type="Chat", thread_sub_type="groupChat", received_at=T0, urls=("https://ok.example/",),
            sender_aad_object_id="aad-adele", sender_id="29:adele", sender_name="Adele Vance", sender_upn=ADELE,
            snippet="Adele's own words: lunch at noon? https://ok.example/"))
        await ConversationStore(services.db).remember_users(
            [StoredUser("29:adele", "aad-adele", "Adele Vance", ADELE, "tenant-1", T0),
             StoredUser("29:grady", "aad-grady", "Grady Archie", GRADY, "tenant-1", T0)])
        view = click(T0, user=ADELE, report_id="r-adele")
        for c in (view, view.clicked_through(T0 + timedelta(seconds=5), None, None),
                  click(T0, user=GRADY, report_id="r-grady", url="https://other-phish.example/x", sender="eve@x.com",
                        message="1700000000002"),
                  click(T0, user=ADELE, report_id="r-clean", verdict="clean", action=ActionType.CLICK_ALLOWED)):
            await services.clicks.record(c)
        assert await system.engine.process_clicks() == 3
        yield World(services, system, clock)


async def everything(db: Database) -> str:
    """Every row of every table, as one lower-case text (to look for a person anywhere)."""
    tables = [r["name"] for r in await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if db.dialect == "sqlite" else
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")]
    dump = {t: await db.fetchall(f"SELECT * FROM {t}") for t in tables}
    return json.dumps(dump, default=str).lower()


async def counts(db: Database) -> dict[str, Any]:
    out = {}
    for table in ("clicks", "alerts", "incidents", "alert_events", "incident_entities", "teams_messages", "outbox"):
        row = await db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        out[table] = row["n"] if row else 0
    rows = await db.fetchall("SELECT id, incident_id FROM alerts ORDER BY id")
    out["links"] = [(r["id"], r["incident_id"]) for r in rows]
    return out


async def test_export_holds_the_console_records_of_a_person(zoe: World) -> None:
    """Export includes the audit entries by or about the person and their console sessions, not others'."""
    doc = await export_subject(zoe.db, "zoe@contoso.com", now=T0)
    assert doc["counts"]["audit_log"] == 2 and doc["counts"]["console_sessions"] == 1
    assert {r["action"] for r in doc["records"]["audit_log"]} == {"tabl.block", "alert.assignedTo"}


async def test_export_holds_everything_about_one_person(world: World) -> None:
    """Export finds the person's clicks, alerts, incident, message, profile and e-mails, and nobody else's."""
    doc = await export_subject(world.db, "ADELE@contoso.com", now=T0)
    assert doc["subject"]["userPrincipalName"] == ADELE
    assert doc["subject"]["objectIds"] == ["aad-adele"] and doc["subject"]["displayNames"] == ["Adele Vance"]
    got = doc["counts"]
    assert got["clicks"] == 3 and got["alerts"] == 2 and got["incidents"] == 1 and got["teams_messages"] == 1
    assert got["teams_users"] == 1 and got["outbox"] == 2 and got["incident_entities"] >= 1
    assert GRADY not in json.dumps(doc)
    assert doc["records"]["alerts"][0]["evidence"][0]  # JSON columns come back as JSON


async def test_erase_pseudonymises_everywhere_and_keeps_counts(world: World) -> None:
    """After erasure the person's UPN, object id and name appear nowhere; counts and incident links are unchanged."""
    before = await counts(world.db)
    done = await erase_subject(world.db, ADELE, KEY)
    assert done.alias == pseudonym(KEY, ADELE) and done.changed["alerts"] == 2 and done.changed["clicks"] == 3
    assert await counts(world.db) == before
    text = await everything(world.db)
    for trace in (ADELE, "aad-adele", "29:adele", "adele vance", "adele's own words"):
        assert trace not in text, trace
    assert done.alias in text and GRADY in text and "grady archie" in text
    erased = await world.db.fetchone("SELECT * FROM clicks WHERE report_id = 'r-clean'")
    assert erased is not None and erased["ip_address"] is None and erased["user_agent"] is None
    incident = await world.db.fetchone("SELECT alert_count FROM incidents WHERE id = ?", (before["links"][0][1],))
    assert incident == {"alert_count": 2}
    assert (await erase_subject(world.db, ADELE, KEY)).changed["alerts"] == 0  # nothing left to find
    assert sum((await export_subject(world.db, ADELE, now=T0))["counts"].values()) == 0


ZOE_IP = "198.51.100.23"
ZOE_TRACES = ("zoe@contoso.com", "aad-zoe", "29:zoe", "zoë [the] admin", "zoë (the) admin", "meet me at the pier",
              "zoë's browser", ZOE_IP)


def _forms(trace: str) -> list[str]:
    """A text as stored: itself, JSON-escaped, and JSON-escaped inside JSON (a card inside an outbox row)."""
    once = json.dumps(trace)[1:-1]
    return [trace, once, json.dumps(once)[1:-1]]


async def traces_in(db: Database) -> list[str]:
    """The traces of Zoë found in any row of any table."""
    tables = [r["name"] for r in await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if db.dialect == "sqlite" else
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")]
    dump = json.dumps({t: await db.fetchall(f"SELECT * FROM {t}") for t in tables}, default=str,
                      ensure_ascii=False)
    # Wrapped links carry their context (recipient, sender) encoded: read those too.
    contexts = [LinkContext.decode(d) for d in re.findall(r"[?&]data=([A-Za-z0-9_-]+)", dump)]
    dump = (dump + json.dumps([[c.sender, c.recipient, c.recipient_id] for c in contexts])).lower()
    return [t for t in ZOE_TRACES if any(form in dump for form in _forms(t))]


@pytest.fixture
async def zoe(make_settings: Callable[..., Settings], db_url: str) -> AsyncIterator[World]:
    """Zoë sent a message Grady clicked, and clicked a link herself; cards, e-mails and webhooks copied it all."""
    from bot.alert_ports import card_poster

    clock = FakeClock(T0)
    settings = make_settings(database_url=db_url, alert_email_to="soc@contoso.com", smtp_host="127.0.0.1",
                             security_channel="19:security@thread.tacv2", alert_webhook_urls="http://127.0.0.1:9/hook",
                             alert_webhook_secret="s3cret")
    async with open_services(settings, clock=clock, background=False) as services:
        outbox = Outbox(services.db, clock=clock)
        system = build_alerting(services, outbox, evidence=BotEvidence(services.db), post_card=card_poster(None, clock))
        await EvidenceStore(services.db).save(TeamsMessageEvidence(
            conversation_id="19:chat-1@unq.gbl.spaces", message_id="1700000000009",
            thread_id="19:chat-1@unq.gbl.spaces", thread_type="Chat", thread_sub_type="groupChat", received_at=T0,
            urls=("https://login.contoso-phish.com/signin",), sender_aad_object_id="aad-zoe", sender_id="29:zoe",
            sender_name="Zoë [the] Admin", sender_upn="zoe@contoso.com",
            snippet="Meet me at the pier: https://login.contoso-phish.com/signin"))
        await ConversationStore(services.db).remember_users(
            [StoredUser("29:zoe", "aad-zoe", "Zoë [the] Admin", "zoe@contoso.com", "tenant-1", T0),
             StoredUser("29:grady", "aad-grady", "Grady Archie", GRADY, "tenant-1", T0)])
        grady = click(T0, user=GRADY, report_id="r-grady", message="1700000000009", sender="zoe@contoso.com")
        own = replace(click(T0, user="zoe@contoso.com", report_id="r-zoe", url="https://other-phish.example/x",
                            message="1700000000002", sender="eve@x.com"),
                      account_object_id="aad-zoe", ip_address=ZOE_IP, user_agent="Zoë's browser")
        for c in (grady, own, own.clicked_through(T0 + timedelta(seconds=5), ZOE_IP, "Zoë's browser")):
            await services.clicks.record(c)
        assert await system.engine.process_clicks() == 3
        # The bot's reply to Zoë's message: its link is wrapped for her (her UPN inside the link's context).
        wrapped = services.signer.wrap("https://login.contoso-phish.com/signin", LinkContext(
            workload=Workload.TEAMS, conversation="19:chat-1@unq.gbl.spaces", message="1700000000009",
            sender="zoe@contoso.com", recipient="zoe@contoso.com", recipient_id="aad-zoe"))
        await notify.enqueue(outbox, target="19:chat-1@unq.gbl.spaces", card=reply_card(
            [CardLink("https://login.contoso-phish.com/signin", wrapped, Verdict.MALICIOUS)]),
            card_key="reply:19:chat-1@unq.gbl.spaces:1700000000009")
        # Zoë is also an analyst: signed in to the console, she changed things, and someone assigned her an alert.
        await Sessions(services.db, idle_seconds=1800, max_seconds=3600).start(
            "aad-zoe", "Zoë [the] Admin", Role.ADMIN, via="oidc", now=T0.timestamp())
        async with services.db.transaction() as tx:
            await audit.record(tx, Actor("aad-zoe", "Zoë [the] Admin", via="console"), "tabl.block",
                               "login.contoso-phish.com", "", at=T0.timestamp())
            await audit.record(tx, Actor("api", via="api"), "alert.assignedTo", "alert 1", "zoe@contoso.com",
                               at=T0.timestamp())
            await audit.record(tx, Actor("aad-grady", "Grady Archie", via="console"), "tabl.allow", "ok.example", "",
                               at=T0.timestamp())
        other = services.signer.wrap("https://ok.example/", LinkContext(workload=Workload.TEAMS, sender=GRADY))
        await notify.enqueue(outbox, target="19:other@thread.v2", card=reply_card(
            [CardLink("https://ok.example/", other, Verdict.CLEAN)]), card_key="reply:19:other@thread.v2:1")
        yield World(services, system, clock)


async def test_erasure_leaves_no_copy_anywhere(zoe: World, tmp_path: Path) -> None:
    """After erasure no table, notification copy, WAL or free page holds the person's name, ids, words or IP."""
    db = zoe.db
    assert await traces_in(db) == list(ZOE_TRACES)
    if db.dialect == "sqlite":  # the originals in the database file itself, not only in the log
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert await db.fetchone("PRAGMA secure_delete") == {"secure_delete": 1}
    kinds = {r["kind"] for r in await db.fetchall("SELECT kind FROM outbox")}
    assert kinds == {"teams", "email", "webhook"}
    untouched = (await db.fetchone("SELECT payload FROM outbox WHERE key = '19:other@thread.v2'") or {})["payload"]
    done = await erase_subject(db, "zoe@contoso.com", KEY)
    assert await traces_in(db) == []
    after = await everything(db)
    assert done.alias in after and GRADY in after and "grady archie" in after
    grady = await db.fetchone("SELECT ip_address FROM clicks WHERE report_id = 'r-grady'")
    assert grady == {"ip_address": "203.0.113.0"}  # another person's click keeps its address
    rows = {r["key"]: r["payload"] for r in await db.fetchall("SELECT key, payload FROM outbox WHERE kind = 'teams'")}
    assert untouched == rows["19:other@thread.v2"]  # a message that is not about her stays as it was
    assert done.changed["outbox"] == 9  # every card, e-mail and webhook about her, and the reply to her message
    assert done.changed["audit_log"] == 2 and done.changed["console_sessions"] == 1
    assert await db.fetchone("SELECT COUNT(*) AS n FROM audit_log") == {"n": 3}  # the changes stay, without her
    assert await db.fetchone("SELECT COUNT(*) AS n FROM console_sessions") == {"n": 0}
    assert await db.fetchone("SELECT actor, actor_name FROM audit_log WHERE action = 'tabl.allow'") == {
        "actor": "aad-grady", "actor_name": "Grady Archie"}
    if db.dialect == "sqlite":
        path = Path(db.path)
        wal = Path(f"{path}-wal")
        assert not wal.exists() or _found_in(wal.read_bytes()) == []
        assert _found_in(path.read_bytes()) == [], "an old copy is left in the database file"


def _found_in(data: bytes) -> list[str]:
    text = data.lower()
    return [t for t in ZOE_TRACES if any(form.encode("utf-8") in text for form in _forms(t))]


@pytest.mark.parametrize("bad", ["", "adele", "two@at@signs", "with space@contoso.com"])
async def test_requests_need_a_upn(world: World, bad: str) -> None:
    """A user that is not name@domain is refused with PrivacyError."""
    with pytest.raises(PrivacyError):
        await find_subject(world.db, bad)


async def test_retention_purges_each_table_past_its_horizon(world: World) -> None:
    """Old clicks, messages, users, whole incidents and sent mail go; what is recent or still pending stays."""
    db = world.db
    old = (T0 - timedelta(days=400)).timestamp()
    await db.execute("UPDATE teams_messages SET received_at = ?", (old,))
    await db.execute("UPDATE teams_users SET looked_up_at = ? WHERE user_id = '29:grady'", (old,))
    await db.execute("UPDATE clicks SET timestamp = ? WHERE report_id = 'r-grady'", (old,))
    grady = await db.fetchone("SELECT incident_id FROM alerts WHERE account_upn = ?", (GRADY,))
    assert grady is not None
    await db.execute("UPDATE incidents SET last_activity = ? WHERE id = ?", (old, grady["incident_id"]))
    await db.execute("UPDATE alerts SET last_activity = ?", (old,))  # Adele's incident is still recent: kept whole
    await db.execute("UPDATE outbox SET status = 'done', done_at = ? WHERE id = (SELECT MIN(id) FROM outbox)",
                     (old,))
    unread = click(T0 - timedelta(days=400), user=GRADY, report_id="r-unread")
    await world.services.clicks.record(unread)  # not yet seen by the alert engine: must stay
    async with db.transaction() as tx:
        for days in (400, 300):
            await audit.record(tx, Actor("cli:root", "root", via="cli"), "feed.add", f"feed-{days}",
                               at=(T0 - timedelta(days=days)).timestamp())
    done = await purge(db, RetentionPolicy(), T0)
    assert done == {"clicks": 1, "messages": 1, "users": 1, "quarantine": 0, "reports": 0, "incidents": 1, "alerts": 1,
                    "outbox": 1, "audit": 1}
    assert [r["target"] for r in await db.fetchall("SELECT target FROM audit_log")] == ["feed-300"]
    left = await counts(db)
    assert left["clicks"] == 4 and left["alerts"] == 2 and left["incidents"] == 1 and left["outbox"] == 2
    assert {r["incident_id"] for r in await db.fetchall("SELECT incident_id FROM alert_events e JOIN alerts a "
                                                         "ON a.id = e.alert_id")} == {left["links"][0][1]}
    assert await db.fetchone("SELECT 1 AS x FROM incident_entities WHERE incident_id = ?",
                             (grady["incident_id"],)) is None
    assert await purge(db, RetentionPolicy(), T0) == dict.fromkeys(done, 0)


def test_privacy_cli_export_and_erase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """privacy export writes the JSON; erase without --yes changes nothing; with --yes it pseudonymises."""
    import asyncio

    from safelinks.cli import main
    from shared.config import load_settings
    from tests.conftest import TEST_KEYS

    for key, value in {"SAFELINKS_DATA_DIR": str(tmp_path / "var"), "SAFELINKS_SIGNING_KEYS": TEST_KEYS,
                       "SAFELINKS_SIGNING_KEY_ID": "k1"}.items():
        monkeypatch.setenv(key, value)

    async def seed() -> None:
        async with open_services(load_settings(), background=False) as s:
            await s.clicks.record(click(T0, user=ADELE, report_id="r-1"))

    asyncio.run(seed())

    def run(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        return int(exit_info.value.code or 0), capsys.readouterr().out

    code, out = run("privacy", "export", "--user", ADELE)
    assert code == 0 and json.loads(out)["counts"]["clicks"] == 1
    code, out = run("privacy", "erase", "--user", ADELE)
    assert code == 0 and "clicks" in out
    assert json.loads(run("privacy", "export", "--user", ADELE)[1])["counts"]["clicks"] == 1
    code, out = run("privacy", "erase", "--user", ADELE, "--yes", "--json")
    assert code == 0 and json.loads(out)["changed"]["clicks"] == 1
    assert json.loads(run("privacy", "export", "--user", ADELE)[1])["counts"]["clicks"] == 0
    assert run("privacy", "export", "--user", "nobody")[0] == 2
    code, out = run("privacy", "purge", "--json")
    assert code == 0 and json.loads(out)["clicks"] == 0
    code, out = run("privacy", "retention")
    assert code == 0 and "180 days" in out and "audit log" in out and "365 days" in out

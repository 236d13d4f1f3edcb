"""Coverage end to end against the Graph stand-in: discovery with paging, installs through the outbox,
refusals with why, throttling, two workers, scope and exclusions, the CLI and the console's Overview."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from safelinks.quarantine import graph_client
from shared.config import ConfigError, Settings, load_settings
from shared.coverage import RSC_PERMISSIONS, CoverageError, Kind, Scope, State
from shared.coverage.service import KIND, Coverage
from shared.outbox import Outbox
from shared.store import open_database
from shared.store.coverage import CoverageStore
from tests.conftest import run_cli
from tests.graph_standin import GRAPH_TENANT, GraphStandIn, graph_standin
from tests.graph_teamwork import APP_ID, CATALOG_ID, Teamwork
from tests.waiting import delivered, eventually

TEAMS = {f"team-{n}": f"Team {n}" for n in range(1, 6)}  # five teams: three pages of two
ALICE, BOB, CAROL = "u-alice", "u-bob", "u-carol"
GROUP_CHAT, OTHER_CHAT, ONE_ON_ONE = "19:gc1@thread.v2", "19:gc2@thread.v2", "19:1on1@unq.gbl.spaces"


def tenant() -> Teamwork:
    work = Teamwork(teams=dict(TEAMS))
    work.add_user(ALICE, "alice@contoso.example")
    work.add_user(BOB, "bob@contoso.example")
    work.add_user(CAROL, "carol@contoso.example")
    work.add_user("u-guest", "guest_fabrikam.example#EXT#@contoso.example", guest=True)
    work.add_user("u-room", "room1@contoso.example", enabled=False)
    work.chats = {GROUP_CHAT: {"chatType": "group", "members": [ALICE, BOB]},
                  OTHER_CHAT: {"chatType": "group", "members": [CAROL, BOB]},
                  ONE_ON_ONE: {"chatType": "oneOnOne", "members": [ALICE, CAROL]}}
    work.groups = {"g-finance": [ALICE], "team-2": [BOB]}
    work.installed = {("teams", "team-1"), ("teams", "team-4"), ("users", BOB)}
    return work


@pytest.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    async with graph_standin(teamwork=tenant()) as standin:
        yield standin


def graph_settings(graph: GraphStandIn, **more: Any) -> dict[str, Any]:
    return {**graph.settings(), "microsoft_app_id": APP_ID, "microsoft_app_tenant_id": GRAPH_TENANT, **more}


@asynccontextmanager
async def rig(db_url: str, graph: GraphStandIn, *, kinds: tuple[str, ...] = ("all",), groups: tuple[str, ...] = (),
              users: tuple[str, ...] = (), exclude: tuple[str, ...] = (), rsc_consent: bool = True,
              catalog: str = "") -> AsyncIterator[tuple[Coverage, Outbox]]:
    db = await open_database(db_url)
    outbox = Outbox(db, poll_interval=0.05)
    client = graph_client(load_settings(**graph_settings(graph)))
    coverage = Coverage(db, outbox, Scope.parse(kinds, groups=groups, users=users, exclude=exclude), graph=client,
                        app_external_id=APP_ID, clock=lambda: datetime.now(UTC), catalog_app_id=catalog,
                        rsc_consent=rsc_consent, rate=500)
    outbox.register(KIND, coverage.deliver, global_rate=500)
    try:
        yield coverage, outbox
    finally:
        await client.close()
        await db.close()


async def drain(outbox: Outbox, timeout: float = 10.0) -> None:
    """Deliver until nothing waits (items retried later are waited for)."""
    for _ in range(int(timeout / 0.05)):
        await outbox.run_once()
        if not await outbox.list("pending"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting: {await outbox.list('pending')}")


def posts(graph: GraphStandIn) -> list[str]:
    return sorted(c.path for c in graph.calls if c.method == "POST")


async def states(coverage: Coverage) -> dict[tuple[str, str], str]:
    return {(t.kind.value, t.id): t.state.value for t in await coverage.store.targets()}


async def test_a_round_discovers_page_by_page_and_installs_where_missing(db_url: str, graph: GraphStandIn) -> None:
    """Every page is read; the app is installed once where missing (never guests, disabled or 1:1 chats)."""
    async with rig(db_url, graph) as (coverage, outbox):
        detail = await coverage.run_round()
        await drain(outbox)
        assert "teams: 5 found, 3 installs asked" in detail
        assert posts(graph) == sorted([
            "/teams/team-2/installedApps", "/teams/team-3/installedApps", "/teams/team-5/installedApps",
            f"/users/{ALICE}/teamwork/installedApps", f"/users/{CAROL}/teamwork/installedApps",
            f"/chats/{GROUP_CHAT}/installedApps", f"/chats/{OTHER_CHAT}/installedApps"])
        skipped = [c for c in graph.calls if c.method == "GET" and "$skiptoken" in c.query]
        assert {c.path for c in skipped} >= {"/teams", "/users"}
        bodies = {c.path: c.body for c in graph.calls if c.method == "POST"}
        team_body = bodies["/teams/team-2/installedApps"]
        assert team_body["teamsApp@odata.bind"] == f"{graph.graph_url}/appCatalogs/teamsApps/{CATALOG_ID}"
        assert team_body["consentedPermissionSet"]["resourceSpecificPermissions"] == [
            {"permissionValue": "ChannelMessage.Read.Group", "permissionType": "Application"}]
        assert "consentedPermissionSet" not in bodies[f"/users/{ALICE}/teamwork/installedApps"]
        found = await states(coverage)
        assert set(found.values()) == {"covered"} and len(found) == 5 + 3 + 2
        assert ("user", "u-guest") not in found and ("chat", ONE_ON_ONE) not in found
        summary = {s.kind: s for s in await coverage.store.summary()}
        assert [summary[k].percent for k in (Kind.TEAM, Kind.CHAT, Kind.USER)] == [100.0, 100.0, 100.0]
        detail_of = {t.id: t.detail for t in await coverage.store.targets()}
        assert detail_of["team-1"] == "already installed" and detail_of["team-2"] == "installed by Safe Links"

        before = len(posts(graph))
        await coverage.run_round()
        await drain(outbox)
        assert len(posts(graph)) == before
        assert set((await states(coverage)).values()) == {"covered"}


async def test_installed_meanwhile_answers_409_and_counts_as_covered(db_url: str, graph: GraphStandIn) -> None:
    """An install answered 409 (added meanwhile) counts as covered, not failed."""
    async with rig(db_url, graph, kinds=("teams",)) as (coverage, outbox):
        await coverage.run_round()
        graph.teamwork.installed.add(("teams", "team-3"))
        await drain(outbox)
        target = await coverage.store.get(Kind.TEAM, "team-3")
        assert target is not None and target.state is State.COVERED and "409" in (target.detail or "")
        tries = [c.status for c in graph.calls if c.path == "/teams/team-3/installedApps" and c.method == "POST"]
        assert tries == [409]


@pytest.mark.parametrize(("revoked", "kind", "where", "why"), [
    # Reading a user's chats needs Chat.ReadBasic.All: the chats' round fails, saying so.
    ({"Chat.ReadBasic.All"}, Kind.CHAT, "round", "Chat.ReadBasic.All"),
    # Without any chat installation permission even reading installed apps is refused: the round stops early.
    ({"TeamsAppInstallation.ReadWriteSelfForChat.All", "TeamsAppInstallation.ReadWriteAndConsentSelfForChat.All"},
     Kind.CHAT, "round", "TeamsAppInstallation.ReadWriteSelfForChat.All"),
    # Reading works, but installing an app with RSC permissions needs the consent variant: each chat fails.
    ({"TeamsAppInstallation.ReadWriteAndConsentSelfForChat.All"}, Kind.CHAT, "target",
     "grant the application permission TeamsAppInstallation.ReadWriteAndConsentSelfForChat.All"),
    ({"TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All"},
     Kind.USER, "round", "TeamsAppInstallation.ReadWriteSelfForUser.All"),
])
async def test_a_missing_permission_is_reported_with_why(db_url: str, graph: GraphStandIn, revoked: set[str],
                                                         kind: Kind, where: str, why: str) -> None:
    """A missing permission fails the round or the targets, naming the permission; other kinds go on."""
    graph.teamwork.granted -= revoked
    async with rig(db_url, graph) as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox)
        summary = {s.kind: s for s in await coverage.store.summary()}
        assert summary[Kind.TEAM].percent == 100.0
        last = summary[kind].last_round
        assert last is not None
        if where == "round":
            assert last.outcome == "failed" and why in last.detail
        else:
            assert last.outcome == "ok"
            failed = await coverage.store.targets(state=State.FAILED, kind=kind)
            assert {t.id for t in failed} == {GROUP_CHAT, OTHER_CHAT}
            assert all(why in (t.detail or "") and "403" in (t.detail or "") for t in failed)
            assert await outbox.list("failed") == []  # Graph's refusal is the target's record, not a lost delivery
            graph.teamwork.granted |= revoked  # the admin grants it: the next round installs
            await coverage.run_round()
            await drain(outbox)
            assert not await coverage.store.targets(state=State.FAILED)


async def test_throttled_reads_and_installs_are_retried_after_retry_after(db_url: str, graph: GraphStandIn) -> None:
    """Throttled reads and installs are tried again no sooner than Retry-After."""
    graph.teamwork.fail("GET", "/teams", 429, retry_after="1")
    graph.teamwork.fail("POST", f"/users/{ALICE}/", 429, retry_after="1")
    graph.teamwork.fail("POST", f"/users/{ALICE}/", 503)
    async with rig(db_url, graph, kinds=("teams", "users")) as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox, timeout=15)
        lists = [c for c in graph.calls if c.method == "GET" and c.path == "/teams"]
        assert [c.status for c in lists][:2] == [429, 200] and lists[1].at - lists[0].at >= 0.9
        tries = [c for c in graph.calls if c.method == "POST" and c.path.startswith(f"/users/{ALICE}/")]
        assert [c.status for c in tries] == [429, 503, 201] and tries[1].at - tries[0].at >= 0.9
        assert set((await states(coverage)).values()) == {"covered"}


@pytest.mark.parametrize(("groups", "users", "exclude", "expected"), [
    ((), (), ("team-2", "bob@contoso.example", GROUP_CHAT),
     {"/teams/team-3/installedApps", "/teams/team-5/installedApps", f"/users/{ALICE}/teamwork/installedApps",
      f"/users/{CAROL}/teamwork/installedApps", f"/chats/{OTHER_CHAT}/installedApps"}),
    (("g-finance",), (), (), {f"/users/{ALICE}/teamwork/installedApps", f"/chats/{GROUP_CHAT}/installedApps"}),
    (("team-2",), ("CAROL@contoso.example",), (),
     {"/teams/team-2/installedApps", f"/users/{CAROL}/teamwork/installedApps", f"/chats/{GROUP_CHAT}/installedApps",
      f"/chats/{OTHER_CHAT}/installedApps"}),
    (("g-finance",), (), (ALICE,), set()),
])
async def test_scope_and_exclusions_decide_where_it_installs(db_url: str, graph: GraphStandIn, groups: tuple[str, ...],
                                                             users: tuple[str, ...], exclude: tuple[str, ...],
                                                             expected: set[str]) -> None:
    """Listed groups and users limit where it installs; their chats follow them; exclusions never get it."""
    async with rig(db_url, graph, groups=groups, users=users, exclude=exclude) as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox)
        assert set(posts(graph)) == expected
        excluded = {t.id for t in await coverage.store.targets(state=State.EXCLUDED)}
        assert excluded == {x for x in ("team-2", BOB, GROUP_CHAT, ALICE) if x in exclude or
                            (x == BOB and "bob@contoso.example" in exclude)} - ({"team-2"} if groups else set())


async def test_the_catalog_app_is_looked_up_or_configured(db_url: str, graph: GraphStandIn) -> None:
    """No catalog app fails the round saying to upload it; a configured catalog id is used without a lookup."""
    graph.teamwork.catalog = []
    async with rig(db_url, graph, kinds=("teams",)) as (coverage, _):
        with pytest.raises(CoverageError, match="not in the tenant's app catalog"):
            await coverage.run_round()
        (summary,) = await coverage.store.summary()
        assert summary.last_round is not None and "Upload" in summary.last_round.detail and graph.calls
    graph.teamwork.catalog = [{"id": "configured-id", "externalId": APP_ID, "distributionMethod": "organization"}]
    graph.calls.clear()
    async with rig(db_url, graph, kinds=("teams",), catalog="configured-id") as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox)
        assert not [c for c in graph.calls if c.path.startswith("/appCatalogs")]
        assert all(c.body["teamsApp@odata.bind"].endswith("/configured-id") for c in graph.calls if c.method == "POST")


async def test_a_deleted_team_leaves_the_record(db_url: str, graph: GraphStandIn) -> None:
    """A team gone from a complete round is forgotten; a failed round forgets nothing."""
    async with rig(db_url, graph, kinds=("teams",)) as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox)
        del graph.teamwork.teams["team-5"]
        graph.teamwork.fail("GET", "/teams", 403)
        await coverage.run_round()
        assert len(await coverage.store.targets()) == 5
        await coverage.run_round()
        assert {t.id for t in await coverage.store.targets()} == {f"team-{n}" for n in range(1, 5)}


async def test_two_workers_install_each_target_once(make_settings: Callable[..., Settings], db_url: str,
                                                    graph: GraphStandIn) -> None:
    """Two workers on one store install each missing target exactly once."""
    from aiohttp.test_utils import TestClient, TestServer

    from safelinks.server import create_app
    from shared.services import SERVICES

    settings = make_settings(**graph_settings(graph, coverage="all", database_url=db_url))
    clients = [TestClient(TestServer(create_app(settings, role="worker"), host="127.0.0.1")) for _ in range(2)]
    for client in clients:
        await client.start_server()
    try:
        for _ in range(200):
            if len(posts(graph)) >= 7:
                break
            await asyncio.sleep(0.05)
        db = clients[0].server.app[SERVICES].db

        async def round_done() -> bool:
            row = await db.fetchone("SELECT outcome FROM job_runs WHERE name = 'coverage'")
            return row is not None and row["outcome"] == "ok"

        # The round has enqueued every install it would, and the outbox has sent them all: a second install,
        # were one to come, would be there now.
        await eventually(round_done)
        await delivered(db)
        assert len(posts(graph)) == len(set(posts(graph))) == 7
    finally:
        for client in clients:
            await client.close()


async def test_coverage_is_off_by_default(make_settings: Callable[..., Settings], graph: GraphStandIn) -> None:
    """With SAFELINKS_COVERAGE unset a worker asks Graph nothing and installs nothing."""
    from aiohttp.test_utils import TestClient, TestServer

    from safelinks.coverage import COVERAGE
    from safelinks.server import create_app
    from shared.services import SERVICES

    client = TestClient(TestServer(create_app(make_settings(**graph_settings(graph)), role="worker"), host="127.0.0.1"))
    await client.start_server()
    try:
        db = client.server.app[SERVICES].db

        async def jobs_ran() -> bool:  # the worker's scheduled jobs have had their first round
            return await db.fetchone("SELECT outcome FROM job_runs WHERE name = 'retention'") is not None

        await eventually(jobs_ran)
        assert client.server.app.get(COVERAGE) is None and graph.calls == []
    finally:
        await client.close()


async def test_the_cli_reports_covered_not_covered_and_why(make_settings: Callable[..., Settings],
                                                            graph: GraphStandIn, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`safelinks coverage` gives per kind covered, not covered, failed, share and each failure's why; --json too."""
    settings = make_settings(**graph_settings(graph, coverage="all"))
    graph.teamwork.granted -= {"TeamsAppInstallation.ReadWriteAndConsentSelfForChat.All"}
    async with rig(settings.effective_database_url, graph) as (coverage, outbox):
        await coverage.run_round()
        await drain(outbox)
    config = tmp_path / "cli.yaml"
    config.write_text(f"data_dir: {settings.data_dir}\ncoverage: all\n", encoding="utf-8")
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "coverage")
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert lines["teams"][1:6] == ["5", "0", "0", "0", "100.0"]
    assert lines["chats"][1:6] == ["0", "2", "2", "0", "0.0"]
    assert "TeamsAppInstallation.ReadWriteAndConsentSelfForChat.All" in out and GROUP_CHAT in out
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "coverage", "--json")
    report = json.loads(out)
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert (kinds["user"]["covered"], kinds["user"]["percent"], kinds["chat"]["notCovered"]) == (3, 100.0, 2)
    assert {f["id"] for f in report["failed"]} == {GROUP_CHAT, OTHER_CHAT} and all(f["why"] for f in report["failed"])
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "coverage", "--state",
                                           "covered", "--kind", "team", "--json")
    assert {t["id"] for t in json.loads(out)["targets"]} == set(TEAMS)


async def test_the_overview_shows_the_coverage_percentages(make_settings: Callable[..., Settings]) -> None:
    """The Overview shows each kind's covered share, or that coverage is not measured."""
    from tests.console_rig import signed_in
    from tests.teams_standin import running_bot

    async with running_bot(make_settings()) as bot:
        await signed_in(bot.client, bot.app)
        html = await (await bot.client.get("/console/")).text()
        assert "Coverage</h2>" in html and "Not measured" in html
        store = CoverageStore(bot.services.db)
        now = datetime.now(UTC).timestamp()
        for n in range(4):
            async with bot.services.db.transaction() as tx:
                generation = await store.observe(tx, Kind.TEAM, f"t{n}", f"T{n}", installed=n < 3, excluded=False,
                                                 now=now)
            if generation is not None:
                await store.settle(Kind.TEAM, f"t{n}", generation, state=State.FAILED, detail="403", now=now)
        html = await (await bot.client.get("/console/")).text()
        assert "Teams: 75.0 %</span> — 3 of 4 covered, 1 failed" in html


def test_the_rsc_consent_matches_the_manifest() -> None:
    """The permissions consented at install are exactly the manifest's RSC permissions."""
    from manifest.build import render_manifest

    manifest = render_manifest(APP_ID, "https://links.contoso.example")
    asked = {p["name"] for p in manifest["authorization"]["permissions"]["resourceSpecific"]}
    assert {p for names in RSC_PERMISSIONS.values() for p in names} == asked


@pytest.mark.parametrize(("value", "kinds"), [
    ("off", set()), ("all", {"team", "chat", "user"}), ("teams", {"team"}), ("Users, chats", {"chat", "user"}),
    ('["teams","users"]', {"team", "user"}), ("", set()),
])
def test_coverage_setting_words(value: str, kinds: set[str]) -> None:
    """SAFELINKS_COVERAGE takes off, all, or a list of teams, chats and users."""
    settings = load_settings(coverage=value)
    assert {k.value for k in Scope.parse(settings.coverage).kinds} == kinds


@pytest.mark.parametrize("value", ["everything", "off,teams", "teams,group"])
def test_bad_coverage_words_are_refused(value: str) -> None:
    """An unknown word, or off with others, is refused naming the setting."""
    with pytest.raises(ConfigError, match="SAFELINKS_COVERAGE"):
        load_settings(coverage=value)


async def test_a_persons_export_and_erasure_cover_their_personal_install(db_url: str) -> None:
    """A person's export shows where the app is installed for them; erasure drops that record, no one else's."""
    from shared.privacy import erase_subject, export_subject

    db = await open_database(db_url)
    try:
        now = datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp()
        store = CoverageStore(db)
        async with db.transaction() as tx:
            for user_id, upn in ((ALICE, "alice@contoso.example"), (BOB, "bob@contoso.example")):
                await store.observe(tx, Kind.USER, user_id, upn, installed=True, excluded=False, now=now)
        exported = await export_subject(db, "Alice@contoso.example", now=datetime.now(UTC))
        assert exported["counts"]["coverage_targets"] == 1
        await erase_subject(db, "alice@contoso.example", b"k" * 32)
        assert [t.id for t in await store.targets()] == [BOB]
    finally:
        await db.close()

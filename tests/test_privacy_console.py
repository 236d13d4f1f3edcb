"""Privacy for an analyst known only to the console: signed in with OpenID Connect (the provider a stand-in on
loopback), they changed something; `safelinks privacy export` and `erase` find and pseudonymise them by UPN."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.privacy.subject import ERASED_NAME
from shared.services import SERVICES
from tests.conftest import TEST_KEYS, run_cli
from tests.console_rig import CSRF_FIELD
from tests.oidc_standin import CLIENT_ID, CLIENT_SECRET
from tests.test_console_oidc import provider, sign_in
from tests.test_privacy import everything

__all__ = ["provider"]  # the provider stand-in's fixture, shared with the sign-in tests
UPN = "Quinn.Analyst@Contoso.example"
NAME = "Quinn Q. Analyst"
OID = "aad-q-0042"


def cli(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str]:
    code, out, _ = run_cli(capsys, "--config", str(config), *argv)
    return code, out


async def test_an_analyst_known_only_to_the_console_is_exported_and_erased(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings], provider: Any, db_url: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An OpenID Connect sign-in keeps the analyst's UPN with their session and their audited changes: privacy
    export by UPN finds the session, the audit row and the entry they made; erase ends the session and leaves
    neither their UPN, name nor id anywhere, the change itself kept under the pseudonym."""
    provider.claims = {"oid": OID, "sub": "sub-q", "name": NAME, "preferred_username": UPN,
                       "roles": ["SafeLinks.Admin"]}
    settings = make_settings(database_url=db_url, console_oidc_metadata_url=provider.metadata_url,
                             console_oidc_client_id=CLIENT_ID, console_oidc_client_secret=CLIENT_SECRET)
    client = await aiohttp_client(create_app(settings))
    db = client.server.app[SERVICES].db
    assert (await sign_in(client)).status == 200
    page = await (await client.get("/console/lists")).text()
    csrf = CSRF_FIELD.search(page)
    assert csrf is not None and f"{NAME} · admin" in page
    added = await client.post("/console/lists", data={"csrf": csrf.group(1), "value": "contoso-phish.com",
                                                      "action": "block", "expiry": "30d", "notes": ""},
                              allow_redirects=False)
    assert added.status == 303, await added.text()
    row = await db.fetchone("SELECT actor, actor_name, actor_upn FROM audit_log WHERE action = 'tabl.block'")
    assert row == {"actor": OID, "actor_name": NAME, "actor_upn": UPN}
    before = await everything(db)
    assert UPN.lower() in before and NAME.lower() in before

    config = tmp_path / "privacy.yaml"
    config.write_text(f"data_dir: {settings.data_dir}\ndatabase_url: '{db_url}'\nsigning_keys: '{TEST_KEYS}'\n"
                      "signing_key_id: k1\n", encoding="utf-8")
    code, out = await asyncio.to_thread(cli, capsys, config, "privacy", "export", "--user", UPN)
    assert code == 0, out
    exported = json.loads(out)
    assert exported["subject"]["objectIds"] == [OID] and exported["subject"]["displayNames"] == [NAME]
    counts = exported["counts"]
    assert (counts["console_sessions"], counts["audit_log"], counts["tabl_entries"]) == (1, 1, 1)
    assert exported["records"]["console_sessions"][0]["user_upn"] == UPN

    code, out = await asyncio.to_thread(cli, capsys, config, "privacy", "erase", "--user", UPN, "--yes", "--json")
    assert code == 0, out
    done = json.loads(out)
    assert done["changed"]["console_sessions"] == 1 and done["changed"]["audit_log"] == 1
    after = await everything(db)
    for trace in (UPN.lower(), NAME.lower(), OID):
        assert trace not in after, trace
    row = await db.fetchone("SELECT actor_name, actor_upn FROM audit_log WHERE action = 'tabl.block'")
    assert row == {"actor_name": ERASED_NAME, "actor_upn": done["pseudonym"]}  # the change stays, without them
    assert await db.fetchone("SELECT COUNT(*) AS n FROM tabl_entries") == {"n": 1}
    assert (await client.get("/console/lists", allow_redirects=False)).status == 303  # signed out
    code, out = await asyncio.to_thread(cli, capsys, config, "privacy", "export", "--user", UPN)
    assert code == 0 and sum(json.loads(out)["counts"].values()) == 0
    assert re.search(r"erased-[0-9a-f]{16}@erased\.invalid", after)

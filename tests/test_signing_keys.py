"""Replicas that agree: a generated signing key lives in the database, and a replica whose links the
others would refuse does not start."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from shared.clicks import Workload
from shared.config import Settings
from shared.services import open_services
from shared.signing import KeyConfigError, Keyring, LinkContext, LinkSigner, LinkStatus, b64e
from shared.signing_keys import PROBE_FRESH_SECONDS, check_replicas, load_keyring, renew_probe
from shared.store import open_database
from tests.conftest import BROWSER_UA
from tests.processes import free_port

BASE = "https://links.contoso.com"
CTX = LinkContext(workload=Workload.TEAMS, recipient="alice@contoso.com")


async def _keys(db_url: str, data_dir: Path, spec: str = "", active: str = "") -> Keyring:
    db = await open_database(db_url)
    try:
        return (await load_keyring(spec, active, db, data_dir)).keyring
    finally:
        await db.close()


async def test_generated_key_is_shared_by_replicas(db_url: str, tmp_path: Path) -> None:
    """Without configured keys, replicas on one database (different data dirs) get the same random-id key."""
    first = await _keys(db_url, tmp_path / "a")
    second = await _keys(db_url, tmp_path / "b")
    assert first.active == second.active and first.key(first.active) == second.key(second.active)
    assert first.active.startswith("g") and len(first.active) == 13  # random, not a date
    link = LinkSigner(first, BASE).wrap("https://example.com/x", CTX)
    assert LinkSigner(second, BASE).decode(link).status is LinkStatus.VALID
    assert not (tmp_path / "a" / "signing-keys.json").exists()


async def test_replicas_starting_together_generate_one_key(db_url: str, tmp_path: Path) -> None:
    """Replicas that generate at the same moment end up with one active key, not one each."""
    dbs = [await open_database(db_url) for _ in range(4)]
    try:
        rings = await asyncio.gather(*(load_keyring("", "", db, tmp_path / str(i)) for i, db in enumerate(dbs)))
        rows = await dbs[0].fetchall("SELECT kid FROM signing_keys WHERE active")
    finally:
        for db in dbs:
            await db.close()
    assert len({r.keyring.active for r in rings}) == 1 and len(rows) == 1


def _legacy(data_dir: Path, kid: str, secret: bytes) -> Keyring:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "signing-keys.json").write_text(json.dumps({"active": kid, "keys": {kid: b64e(secret)}}))
    return Keyring({kid: secret}, kid)


async def test_legacy_key_file_keeps_old_links_valid(tmp_path: Path) -> None:
    """After an upgrade, links signed with <data dir>/signing-keys.json still verify, and it stays active."""
    old = _legacy(tmp_path, "k20261101", b"\x01" * 32)
    link = LinkSigner(old, BASE).wrap("https://example.com/old", CTX)
    ring = await _keys(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    assert LinkSigner(ring, BASE).decode(link).status is LinkStatus.VALID
    assert ring.active == "k20261101"


async def test_legacy_file_conflicting_with_database_verifies_locally(db_url: str, tmp_path: Path) -> None:
    """A replica whose old file reuses the database's key id with another secret keeps verifying its own
    old links and says so; new links use the shared key."""
    _legacy(tmp_path / "a", "k20261101", b"\x01" * 32)
    shared = await _keys(db_url, tmp_path / "a")
    other_old = _legacy(tmp_path / "b", "k20261101", b"\x02" * 32)
    link = LinkSigner(other_old, BASE).wrap("https://example.com/b", CTX)
    db = await open_database(db_url)
    try:
        loaded = await load_keyring("", "", db, tmp_path / "b")
    finally:
        await db.close()
    assert LinkSigner(loaded.keyring, BASE).decode(link).status is LinkStatus.VALID
    assert loaded.keyring.active == shared.active and any("k20261101" in n for n in loaded.notes)


@pytest.mark.parametrize(
    ("other_spec", "refused", "named"),
    [
        ("k1:" + "11" * 32, False, ""),  # same key: fine
        ("k1:" + "33" * 32, True, "'k1'"),  # same id, other secret: the bug of old
        ("k9:" + "44" * 32, True, "'k9'"),  # a key this replica lacks
    ],
)
async def test_replica_check_at_start(db_url: str, other_spec: str, refused: bool, named: str) -> None:
    """A replica refuses to start when a running replica signs links it cannot verify, naming the key."""
    mine = LinkSigner(Keyring.parse("k1:" + "11" * 32), BASE)
    theirs = LinkSigner(Keyring.parse(other_spec), BASE)
    db = await open_database(db_url)
    try:
        await renew_probe(theirs, db, "other-host:1")
        if refused:
            with pytest.raises(KeyConfigError, match=named):
                await check_replicas(mine, db, "this-host:2")
        else:
            await check_replicas(mine, db, "this-host:2")
            rows = await db.fetchall("SELECT replica FROM signing_probes ORDER BY replica")
            assert [r["replica"] for r in rows] == ["other-host:1", "this-host:2"]
    finally:
        await db.close()


async def test_replica_check_ignores_stopped_replicas(db_url: str) -> None:
    """A probe not renewed within the freshness window (a replica long stopped) does not block a start."""
    mine = LinkSigner(Keyring.parse("k1:" + "11" * 32), BASE)
    gone = LinkSigner(Keyring.parse("k1:" + "33" * 32), BASE)
    db = await open_database(db_url)
    try:
        await renew_probe(gone, db, "old-host:1", now=time.time() - PROBE_FRESH_SECONDS - 5)
        await check_replicas(mine, db, "this-host:2")
    finally:
        await db.close()


async def test_serving_services_refuse_a_disagreeing_replica(tmp_path: Path) -> None:
    """open_services for a serving process fails when another running replica's key differs; a clean stop
    withdraws the replica's probe."""
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    common = {"data_dir": tmp_path, "database_url": db_url, "public_url": BASE, "feed_demo": False}
    good = Settings(signing_keys="k1:" + "11" * 32, **common)  # type: ignore[arg-type]
    bad = Settings(signing_keys="k1:" + "55" * 32, **common)  # type: ignore[arg-type]
    async with open_services(good):
        with pytest.raises(KeyConfigError, match="different secret"):
            async with open_services(bad):
                pass
    async with open_services(bad):  # the first replica stopped cleanly: nothing disagrees any more
        pass


async def test_three_postgresql_replicas_without_keys_accept_each_others_links(pg_url: str, tmp_path: Path) -> None:
    """Three `serve` replicas on one PostgreSQL, no keys configured, separate data dirs: every replica's
    sample link is redirected by every replica (none calls another's link tampered)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFELINKS_", "Microsoft"))}
    procs, bases, samples = [], [], []
    try:
        for n in range(3):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "safelinks", "serve", "--role", "proxy"], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True,
                env={**env, "SAFELINKS_DATABASE_URL": pg_url, "SAFELINKS_DATA_DIR": str(tmp_path / f"host{n}"),
                     "SAFELINKS_PORT": str(port), "SAFELINKS_PUBLIC_URL": f"http://127.0.0.1:{port}",
                     "SAFELINKS_LOG_LEVEL": "warning", "SAFELINKS_FEED_DEMO": "false"}))
            bases.append(f"http://127.0.0.1:{port}")
        for proc in procs:
            assert proc.stdout is not None
            line = ""
            while "try a link:" not in line:
                line = await asyncio.to_thread(proc.stdout.readline)
                assert line, "a replica exited before its banner"
            samples.append(line.split("try a link:")[1].strip())
        async with aiohttp.ClientSession() as http:
            for sample in samples:
                query = sample.split("?", 1)[1]
                for base in bases:
                    async with http.get(f"{base}/v1/url?{query}", allow_redirects=False,
                                        headers={"User-Agent": BROWSER_UA}) as r:
                        assert r.status == 302 and r.headers["Location"] == "https://www.example.com/", base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)

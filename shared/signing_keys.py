"""Where the signing keys come from, and the start-up check that every replica verifies the others' links.

Keys are either configured (``SAFELINKS_SIGNING_KEYS``, the same on every replica) or generated once
*in the database*, so every replica that shares the database shares the key; a generated key's id is
random, so two deployments never collide on an id. A ``signing-keys.json`` left in the data directory
by earlier versions is imported into the database on start, so the links it signed keep verifying.

Before serving, a replica verifies the probe link each other running replica signed (and renews its
own while it runs); a replica that cannot verify them refuses to start, naming the key.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.clicks import Workload
from shared.signing import KeyConfigError, Keyring, LinkContext, LinkSigner, LinkStatus, b64d, b64e
from shared.store import Database
from shared.store.signing_keys import SigningKeyTable, SigningProbeTable

log = logging.getLogger(__name__)

LEGACY_FILE = "signing-keys.json"
PROBE_URL = "https://replica-check.safelinks.invalid/"
# A replica's probe counts as "running" while it is younger than this; each replica renews its probe
# at a third of it, so a stopped replica stops counting within this many seconds.
PROBE_FRESH_SECONDS = 300.0
PROBE_EVERY_SECONDS = PROBE_FRESH_SECONDS / 3


@dataclass(frozen=True, slots=True)
class LoadedKeys:
    """The keyring and, for the start banner and the logs, where its keys came from."""

    keyring: Keyring
    origin: str
    notes: tuple[str, ...] = field(default=())


async def load_keyring(spec: str, active: str, db: Database, data_dir: Path) -> LoadedKeys:
    """The configured keys when ``spec`` is set; otherwise the database's shared generated keys."""
    if spec:
        return LoadedKeys(Keyring.parse(spec, active), "SAFELINKS_SIGNING_KEYS (configured)")
    notes: list[str] = []
    table = SigningKeyTable(db)
    legacy = _read_legacy(data_dir / LEGACY_FILE)
    if legacy is not None:
        # The legacy active key becomes the shared one only if the database has none yet (a single host
        # upgrading keeps signing as before); otherwise it is kept to verify the links it signed.
        for kid in [legacy.active, *(k for k in legacy.key_ids if k != legacy.active)]:
            secret = legacy.key(kid)
            assert secret is not None
            inserted = await _insert(table, kid, secret, active=kid == legacy.active, origin="imported")
            if not inserted and kid == legacy.active:
                await _insert(table, kid, secret, active=False, origin="imported")
    keys, current = await _stored(table)
    if current is None:
        kid = "g" + secrets.token_hex(6)
        if await _insert(table, kid, secrets.token_bytes(32), active=True, origin="generated"):
            log.info("generated signing key %s and stored it in the database (shared by every replica)", kid)
        keys, current = await _stored(table)
        if current is None:
            raise KeyConfigError("no active signing key in the database after generating one")
    if legacy is not None:
        for kid in legacy.key_ids:
            secret = legacy.key(kid)
            if secret is not None and keys.get(kid) != secret:
                # Two replicas of an earlier version each generated a key under the same id: keep this
                # one's, so the links it signed still verify here (they never verified elsewhere).
                keys[kid] = secret
                notes.append(f"key {kid} from {data_dir / LEGACY_FILE} differs from the database's; "
                             "links it signed verify on this replica only")
    origin = f"generated, stored in the database (active key {current})"
    return LoadedKeys(Keyring(keys, current), origin, tuple(notes))


def _read_legacy(path: Path) -> Keyring | None:
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Keyring({k: b64d(v) for k, v in raw["keys"].items()}, raw["active"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise KeyConfigError(f"{path} is damaged: {exc}") from exc


async def _insert(table: SigningKeyTable, kid: str, secret: bytes, *, active: bool, origin: str) -> bool:
    # The first replica wins: a key whose id, or the active place, is taken is not stored.
    return await table.add(kid, b64e(secret), active=active, origin=origin, created_at=time.time())


async def _stored(table: SigningKeyTable) -> tuple[dict[str, bytes], str | None]:
    stored = await table.all()
    keys = {key.kid: b64d(key.secret) for key in stored}
    active = next((key.kid for key in stored if key.active), None)
    return keys, active


def replica_name() -> str:
    """This process among the replicas: host, process id and a random part (pids repeat in containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def check_replicas(signer: LinkSigner, db: Database, replica: str, *, now: float | None = None) -> None:
    """Refuse (KeyConfigError) when a running replica signs links this one cannot verify; then renew ours."""
    now = time.time() if now is None else now
    for probe in await SigningProbeTable(db).made_since(now - PROBE_FRESH_SECONDS, other_than=replica):
        result = signer.decode(probe.link)
        if result.status is LinkStatus.VALID:
            continue
        if result.status is LinkStatus.UNKNOWN_KEY:
            raise KeyConfigError(
                f"replica {probe.replica} signs links with key {probe.kid!r}, which this replica does not "
                "have: give every replica the same SAFELINKS_SIGNING_KEYS (or leave it unset on all of them)"
            )
        raise KeyConfigError(
            f"replica {probe.replica} signs links with a different secret under key id {probe.kid!r}: "
            "a link it wraps would be refused here as tampered; give every replica the same "
            "SAFELINKS_SIGNING_KEYS (or leave it unset on all of them to share the database's key)"
        )
    await renew_probe(signer, db, replica, now=now)


async def renew_probe(signer: LinkSigner, db: Database, replica: str, *, now: float | None = None) -> None:
    """Store (or refresh) the link this replica signs, for the replicas that start after it."""
    now = time.time() if now is None else now
    link = signer.wrap(PROBE_URL, LinkContext(workload=Workload.TEAMS))
    probes = SigningProbeTable(db)
    await probes.put(replica, signer.keyring.active, link, now)
    # Probes of replicas long gone are only clutter.
    await probes.drop_older_than(now - 86400.0)


async def forget_probe(db: Database, replica: str) -> None:
    """A replica stopping cleanly stops counting at once."""
    await SigningProbeTable(db).drop(replica)

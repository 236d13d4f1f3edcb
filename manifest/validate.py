"""Validating a Teams app package: Microsoft's schema, then the checks no schema makes.

The schema (see manifest/schema.py) covers the shape of manifest.json. What it cannot see
is checked here: the archive holds its files at the root only; the icons it names are
there, are PNGs of the right size, and the outline icon is white on transparent; the bot
and the RSC app are the same Entra app; and `validDomains` covers the proxy's host.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from manifest.errors import ManifestError
from manifest.icons import (
    SMALL_COLOR_SIZE,
    color_icon_problems,
    outline_icon_problems,
)
from manifest.problems import ManifestProblem
from manifest.public_url import PublicURL, domain_covers, parse_public_url
from manifest.schema import DEFAULT_CACHE_DIR, load_schema
from manifest.schema_check import schema_problems

MANIFEST_NAME = "manifest.json"
# Limits well above any real package, so a hostile archive cannot make us read gigabytes.
MAX_MANIFEST_BYTES = 1 << 20
MAX_ICON_BYTES = 4 << 20
MAX_ENTRIES = 200


def _entry_problems(archive: zipfile.ZipFile) -> list[ManifestProblem]:
    problems = []
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        problems.append(
            ManifestProblem("zip:", f"holds {len(infos)} entries (limit {MAX_ENTRIES})"))
    for info in infos:
        name = info.filename
        if info.is_dir() or "/" in name or "\\" in name:
            problems.append(ManifestProblem(
                f"zip:{name}",
                "is not a file at the root of the archive; zip the files themselves, "
                "not the folder that holds them",
            ))
    return problems


def _read(archive: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    info = archive.getinfo(name)
    if info.file_size > limit:
        return None
    with archive.open(info) as fh:
        # The header's size can lie; reading one byte past the limit catches that.
        data = fh.read(limit + 1)
    return data if len(data) <= limit else None


def _icon_problems(manifest: dict[str, Any], archive: zipfile.ZipFile) -> list[ManifestProblem]:
    icons = manifest.get("icons")
    if not isinstance(icons, dict):
        return [ManifestProblem("/icons", "is required but missing")] if icons is None else []
    names = set(archive.namelist())
    problems: list[ManifestProblem] = []
    for key in ("color", "outline", "color32x32"):
        field = f"/icons/{key}"
        name = icons.get(key)
        if name is None:
            if key != "color32x32":
                problems.append(ManifestProblem(field, "is required but missing"))
            continue
        if not isinstance(name, str):
            continue  # the schema reports the wrong type
        if name not in names:
            problems.append(ManifestProblem(
                field, f"names {name!r}, which is not a file at the root of the package"))
            continue
        data = _read(archive, name, MAX_ICON_BYTES)
        if data is None:
            problems.append(ManifestProblem(field, f"{name} is larger than {MAX_ICON_BYTES} bytes"))
        elif key == "outline":
            problems.extend(outline_icon_problems(field, name, data))
        elif key == "color32x32":
            problems.extend(color_icon_problems(field, name, data, SMALL_COLOR_SIZE))
        else:
            problems.extend(color_icon_problems(field, name, data))
    return problems


def _public_url_of(
    manifest: dict[str, Any], public_url: str | None
) -> PublicURL | ManifestProblem | None:
    if public_url is not None:
        return parse_public_url(public_url)
    developer = manifest.get("developer")
    website = developer.get("websiteUrl") if isinstance(developer, dict) else None
    if not isinstance(website, str):
        return None  # the schema reports the missing URL
    try:
        return parse_public_url(website, "/developer/websiteUrl")
    except ManifestError as exc:
        return ManifestProblem(exc.field, exc.message)


def _domain_problems(manifest: dict[str, Any], url: PublicURL) -> list[ManifestProblem]:
    problems = []
    if url.scheme == "http":
        problems.append(ManifestProblem(
            "/developer/websiteUrl",
            f"{url.base} is plain http; Teams requires https, so this package is only "
            "good for local development",
            "warning",
        ))
    domains = manifest.get("validDomains")
    if not isinstance(domains, list) or not any(
        isinstance(d, str) and domain_covers(d, url.host, url.port) for d in domains
    ):
        problems.append(ManifestProblem(
            "/validDomains", f"does not cover {url.domain}, the host of the public URL"))
    return problems


def _identity_problems(manifest: dict[str, Any]) -> list[ManifestProblem]:
    bots = manifest.get("bots")
    if not isinstance(bots, list) or not bots or not isinstance(bots[0], dict):
        return [ManifestProblem("/bots", "declares no bot; this app is a bot")]
    bot_id = bots[0].get("botId")
    web_app = manifest.get("webApplicationInfo")
    if not isinstance(web_app, dict):
        return [ManifestProblem(
            "/webApplicationInfo",
            "is missing; resource-specific consent needs it, with the bot's app id")]
    app_id = web_app.get("id")
    if not isinstance(bot_id, str) or not isinstance(app_id, str):
        return []  # the schema reports the missing or mistyped ids
    if bot_id.lower() != app_id.lower():
        return [ManifestProblem(
            "/bots/0/botId",
            f"is {bot_id} but /webApplicationInfo/id is {app_id}; they must be the same "
            "Entra app, or the consented message access never reaches the bot",
        )]
    return []


def validate_manifest(
    manifest: Any,
    *,
    public_url: str | None = None,
    schema_cache: Path = DEFAULT_CACHE_DIR,
    skip_schema: bool = False,
    install_schema: bool = True,
) -> list[ManifestProblem]:
    """Problems of a parsed manifest.json: schema first, then bot identity and domains.

    `public_url` is the proxy's public URL; without it the developer website URL (which the
    build sets to the public URL) stands in. A bad `public_url` raises ManifestError; a
    missing schema raises SchemaUnavailable unless `skip_schema`.
    """
    if not isinstance(manifest, dict):
        return [ManifestProblem("", "manifest.json must hold a JSON object")]
    problems: list[ManifestProblem] = []
    if not skip_schema:
        version = manifest.get("manifestVersion")
        if not isinstance(version, str):
            problems.append(ManifestProblem(
                "/manifestVersion", "is required to pick the schema, and is missing"))
        else:
            schema = load_schema(version, schema_cache, install=install_schema)
            problems.extend(schema_problems(manifest, schema))
    problems.extend(_identity_problems(manifest))
    url = _public_url_of(manifest, public_url)
    if isinstance(url, ManifestProblem):
        problems.append(url)
    elif url is not None:
        problems.extend(_domain_problems(manifest, url))
    return problems


def validate_package(
    path: Path,
    *,
    public_url: str | None = None,
    schema_cache: Path = DEFAULT_CACHE_DIR,
    skip_schema: bool = False,
    install_schema: bool = True,
) -> list[ManifestProblem]:
    """Every problem of the app package at `path`; an empty list means valid.

    A missing or unreadable file raises ManifestError; anything wrong inside it is a problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("package", f"{path} is not a file")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return [ManifestProblem("zip:", f"{path.name} is not a zip archive")]
    except OSError as exc:
        raise ManifestError("package", f"cannot read {path}: {exc}") from exc
    with archive:
        problems = _entry_problems(archive)
        if MANIFEST_NAME not in archive.namelist():
            problems.append(ManifestProblem(
                f"zip:{MANIFEST_NAME}", "is missing from the root of the archive"))
            return problems
        try:
            raw = _read(archive, MANIFEST_NAME, MAX_MANIFEST_BYTES)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            return [*problems, ManifestProblem(f"zip:{MANIFEST_NAME}", f"cannot be read: {exc}")]
        if raw is None:
            return [*problems, ManifestProblem(
                f"zip:{MANIFEST_NAME}", f"is larger than {MAX_MANIFEST_BYTES} bytes")]
        try:
            manifest = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            return [*problems, ManifestProblem(
                f"zip:{MANIFEST_NAME}", f"is not valid UTF-8 JSON: {exc}")]
        problems.extend(validate_manifest(
            manifest, public_url=public_url, schema_cache=schema_cache,
            skip_schema=skip_schema, install_schema=install_schema,
        ))
        if isinstance(manifest, dict):
            try:
                problems.extend(_icon_problems(manifest, archive))
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                problems.append(ManifestProblem("/icons", f"cannot be read: {exc}"))
    return sorted(set(problems), key=lambda p: (p.field, p.message))

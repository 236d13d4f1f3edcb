"""Microsoft's Teams manifest JSON schema: where it is cached, how it is installed, how it is read.

The schemas ship inside the MIT-licensed npm package `@microsoft/app-manifest`
(`build/json-schemas/teams/v1.xx/MicrosoftTeams.schema.json`). They are not copied into
this repository: the package is installed on demand into a cache directory
(`./.cache/app-manifest` unless told otherwise) with the pinned version below, and later
runs read it from there without touching npm again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from manifest.errors import SchemaUnavailable

NPM_PACKAGE = "@microsoft/app-manifest"
# Pinned so that a package validated today is validated the same way next year.
NPM_VERSION = "1.1.2"
DEFAULT_CACHE_DIR = Path(".cache") / "app-manifest"
NPM_TIMEOUT_SECONDS = 300.0

_MANIFEST_VERSION = re.compile(r"^(?:1\.\d{1,3}|devPreview)$")


def package_dir(cache_dir: Path) -> Path:
    """The installed npm package inside a cache directory."""
    return cache_dir / "node_modules" / "@microsoft" / "app-manifest"


def schema_path(manifest_version: str, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Where the schema for `manifest_version` ("1.30", "devPreview") lives in the cache.

    The version is checked before it becomes part of a path, so a manifest cannot point the
    validator at an arbitrary file.
    """
    if not isinstance(manifest_version, str) or not _MANIFEST_VERSION.match(manifest_version):
        raise SchemaUnavailable(
            "/manifestVersion",
            f"{manifest_version!r} is not a Teams manifest schema version (like '1.30')",
        )
    folder = "vDevPreview" if manifest_version == "devPreview" else f"v{manifest_version}"
    return (
        package_dir(cache_dir)
        / "build"
        / "json-schemas"
        / "teams"
        / folder
        / "MicrosoftTeams.schema.json"
    )


def installed_version(cache_dir: Path) -> str | None:
    """The version of `@microsoft/app-manifest` in the cache, or None when absent or unreadable."""
    try:
        with (package_dir(cache_dir) / "package.json").open(encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def install_command(cache_dir: Path) -> list[str]:
    """The npm command line that fills the cache with the pinned package."""
    return [
        "npm",
        "install",
        "--prefix",
        str(cache_dir),
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--no-save",
        f"{NPM_PACKAGE}@{NPM_VERSION}",
    ]


def _how_to_install(cache_dir: Path) -> str:
    return (
        f"install Node.js/npm, or run `{' '.join(install_command(cache_dir))}` "
        "on a machine with npm and copy the directory, or skip the schema check (--skip-schema)"
    )


def install_schemas(cache_dir: Path = DEFAULT_CACHE_DIR) -> None:
    """Run npm to install the pinned `@microsoft/app-manifest` into `cache_dir`."""
    npm = shutil.which("npm")
    if npm is None:
        raise SchemaUnavailable(
            "schema",
            f"{NPM_PACKAGE}@{NPM_VERSION} is not in {cache_dir} and npm is not on PATH: "
            + _how_to_install(cache_dir),
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [npm, *install_command(cache_dir)[1:]]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchemaUnavailable("schema", f"npm install failed to run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SchemaUnavailable(
            "schema",
            f"npm install of {NPM_PACKAGE}@{NPM_VERSION} exited {done.returncode}: "
            + " | ".join(tail),
        )


def ensure_schema(
    manifest_version: str, cache_dir: Path = DEFAULT_CACHE_DIR, *, install: bool = True
) -> Path:
    """The path of the schema for `manifest_version`, installing the npm package if needed.

    A cache holding another version of the package counts as missing, so the pinned one
    replaces it. Raises SchemaUnavailable when the schema can be neither found nor installed.
    """
    path = schema_path(manifest_version, cache_dir)
    if installed_version(cache_dir) == NPM_VERSION and path.is_file():
        return path
    if installed_version(cache_dir) != NPM_VERSION:
        if not install:
            raise SchemaUnavailable(
                "schema",
                f"{NPM_PACKAGE}@{NPM_VERSION} is not installed in {cache_dir}: "
                + _how_to_install(cache_dir),
            )
        install_schemas(cache_dir)
    if not path.is_file():
        raise SchemaUnavailable(
            "/manifestVersion",
            f"{NPM_PACKAGE}@{NPM_VERSION} bundles no schema for manifest version "
            f"{manifest_version!r} (looked for {path})",
        )
    return path


def load_schema(
    manifest_version: str, cache_dir: Path = DEFAULT_CACHE_DIR, *, install: bool = True
) -> dict[str, Any]:
    """The parsed schema for `manifest_version` (see ensure_schema)."""
    path = ensure_schema(manifest_version, cache_dir, install=install)
    stat = path.stat()
    return _read_schema(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_schema(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    # mtime and size are part of the key so a reinstalled schema is read afresh.
    # The schema files start with a UTF-8 byte order mark, hence utf-8-sig.
    try:
        with open(path, encoding="utf-8-sig") as fh:
            schema = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SchemaUnavailable("schema", f"cannot read {path}: {exc}") from exc
    if not isinstance(schema, dict):
        raise SchemaUnavailable("schema", f"{path} does not hold a JSON object")
    return schema

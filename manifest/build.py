"""Building the Teams app package: manifest.json rendered from the template, plus the two icons.

The package is a zip with `manifest.json`, `color.png` and `outline.png` at its root. It
is written next to its destination, validated, and only then moved into place, so a
failed build never leaves a half-written or invalid package where an admin would upload it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from manifest.errors import ManifestError, PackageInvalid
from manifest.problems import ManifestProblem, has_errors
from manifest.public_url import parse_public_url
from manifest.schema import DEFAULT_CACHE_DIR
from manifest.validate import validate_package

MANIFEST_DIR = Path(__file__).resolve().parent
TEMPLATE_NAME = "manifest.json.j2"
ICON_FILES = ("color.png", "outline.png")
# A fixed entry time makes two builds from the same inputs byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class PackageBuild:
    """A written package and what validation found (warnings only, or it would not exist)."""

    path: Path
    problems: tuple[ManifestProblem, ...]


def check_app_id(app_id: str, field: str = "app_id") -> str:
    """The app id in its canonical lower-case form; it must be a GUID (the Entra app id)."""
    if not isinstance(app_id, str) or not _GUID.match(app_id.strip()):
        raise ManifestError(
            field, f"{app_id!r} is not a GUID like 00000000-0000-0000-0000-000000000000"
        )
    return app_id.strip().lower()


def check_version(version: str, field: str = "version") -> str:
    """The app version; Teams wants plain MAJOR.MINOR.PATCH."""
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise ManifestError(field, f"{version!r} is not a version like 1.0.0")
    return version


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(MANIFEST_DIR),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE_NAME)


def render_manifest(app_id: str, public_url: str, *, version: str = "1.0.0") -> dict[str, Any]:
    """The manifest as a dict, from the template; inputs are checked first (ManifestError)."""
    url = parse_public_url(public_url)
    text = _template().render(
        app_id=check_app_id(app_id),
        version=check_version(version),
        public_url=url.base,
        domain=url.domain,
    )
    manifest = json.loads(text)
    if not isinstance(manifest, dict):
        raise ManifestError(TEMPLATE_NAME, "does not render to a JSON object")
    return manifest


def write_package(
    manifest: Mapping[str, Any], out: Path, *, icons_dir: Path = MANIFEST_DIR
) -> Path:
    """Write the zip: manifest.json and the icons, all at the archive root."""
    body = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("manifest.json", _ZIP_TIME), body,
                         compress_type=zipfile.ZIP_DEFLATED)
        for name in ICON_FILES:
            try:
                data = (icons_dir / name).read_bytes()
            except OSError as exc:
                raise ManifestError(name, f"cannot read the icon: {exc}") from exc
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return out


def _check_out(out: Path) -> Path:
    out = Path(out)
    if out.is_dir():
        raise ManifestError("out", f"{out} is a directory; give the path of the .zip to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ManifestError("out", f"cannot create {out.parent}: {exc}") from exc
    return out


def assemble_package(
    app_id: str,
    public_url: str,
    out: Path,
    *,
    version: str = "1.0.0",
    schema_cache: Path = DEFAULT_CACHE_DIR,
    skip_schema: bool = False,
) -> PackageBuild:
    """Render, write and validate the package; returns it with its warnings.

    Raises ManifestError for bad inputs, SchemaUnavailable when the schema is needed but
    cannot be had, and PackageInvalid (carrying every problem) when validation fails; in
    those cases nothing is left at `out`.
    """
    manifest = render_manifest(app_id, public_url, version=version)
    out = _check_out(out)
    fd, temp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    try:
        write_package(manifest, temp)
        problems = validate_package(
            temp, public_url=public_url, schema_cache=schema_cache, skip_schema=skip_schema
        )
        if has_errors(problems):
            raise PackageInvalid(str(out), tuple(problems))
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    return PackageBuild(path=out, problems=tuple(problems))


def build_package(
    app_id: str,
    public_url: str,
    out: Path,
    *,
    version: str = "1.0.0",
    schema_cache: Path = DEFAULT_CACHE_DIR,
    skip_schema: bool = False,
) -> Path:
    """Build and validate the app package at `out` and return its path (see assemble_package)."""
    return assemble_package(
        app_id, public_url, out, version=version, schema_cache=schema_cache,
        skip_schema=skip_schema,
    ).path

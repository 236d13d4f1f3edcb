"""The Teams app manifest of teams-safelinks: template, icons, package build and validation."""

from manifest.build import (
    PackageBuild,
    assemble_package,
    build_package,
    render_manifest,
    write_package,
)
from manifest.errors import ManifestError, PackageInvalid, SchemaUnavailable
from manifest.problems import ManifestProblem, has_errors
from manifest.schema import DEFAULT_CACHE_DIR, NPM_PACKAGE, NPM_VERSION, ensure_schema
from manifest.validate import validate_manifest, validate_package

__all__ = [
    "DEFAULT_CACHE_DIR",
    "NPM_PACKAGE",
    "NPM_VERSION",
    "ManifestError",
    "ManifestProblem",
    "PackageBuild",
    "PackageInvalid",
    "SchemaUnavailable",
    "assemble_package",
    "build_package",
    "ensure_schema",
    "has_errors",
    "render_manifest",
    "validate_manifest",
    "validate_package",
    "write_package",
]

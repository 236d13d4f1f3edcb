"""One exception tree, and one place per entry point that says how each error is answered."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from console.filters import FilterError
from manifest import ManifestError, PackageInvalid, SchemaUnavailable
from manifest.problems import ManifestProblem
from safelinks.cli.context import CliError, UsageError
from safelinks.cli.exits import EXIT_FAILED, EXIT_USAGE, failure
from safelinks.statuses import Forbidden, status_of
from shared.alerts.errors import InvalidChange, NotAuthorized, NotFound, RulesFileError
from shared.alerts.ingest import ClickRecordError
from shared.errors import ConfigError, SafeLinksError
from shared.graph.errors import GraphUnavailable
from shared.policy import PolicyError, PolicyFileError
from shared.quarantine import QuarantineError, QuarantineNotFound
from shared.signing import KeyConfigError, SigningError
from shared.store import StoreError
from shared.store.errors import StoreUnavailable
from tests.conftest import TEST_KEYS, run_cli

_PACKAGES = ("shared", "bot", "proxy", "safelinks", "console")


def _public_exceptions(packages: tuple[str, ...] = _PACKAGES) -> list[type[BaseException]]:
    found = []
    for package in packages:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith(".__main__"):  # runs the command when imported
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (inspect.isclass(value) and issubclass(value, BaseException) and not name.startswith("_")
                        and value.__module__ == module.__name__):
                    found.append(value)
    return found


def test_every_error_derives_from_the_root() -> None:
    """Every exception class the project's packages define derives from SafeLinksError."""
    exceptions = _public_exceptions()
    assert len(exceptions) > 40
    assert [e.__qualname__ for e in exceptions if not issubclass(e, SafeLinksError)] == []


def test_the_tree_is_documented() -> None:
    """Every exception class, the manifest package's too, is named in the tree written in shared/errors.py's
    docstring."""
    import shared.errors

    doc = shared.errors.__doc__ or ""
    found = _public_exceptions() + _public_exceptions(("manifest",))
    assert [e.__name__ for e in found if e.__name__ not in doc] == []


def test_the_manifest_package_has_one_root_of_its_own() -> None:
    """Every exception the manifest package defines derives from ManifestError, which is outside the tree
    (the package imports nothing of ours)."""
    exceptions = _public_exceptions(("manifest",))
    assert ManifestError in exceptions
    assert [e.__qualname__ for e in exceptions if not issubclass(e, ManifestError)] == []
    assert not issubclass(ManifestError, SafeLinksError)


@pytest.mark.parametrize(
    ("error", "message", "status"),
    [
        (PolicyFileError("p.yaml: bad"), "bad configuration: SAFELINKS_POLICY_FILE: p.yaml: bad",
         EXIT_USAGE),
        (KeyConfigError("no signing keys given"), "bad configuration: SAFELINKS_SIGNING_KEYS: no signing keys given",
         EXIT_USAGE),
        (RulesFileError("r.yaml: cannot read"), "bad configuration: SAFELINKS_ALERT_RULES_FILE: r.yaml: cannot read",
         EXIT_USAGE),
        (ConfigError("SAFELINKS_PORT: not a number"), "bad configuration: SAFELINKS_PORT: not a number", EXIT_USAGE),
        (StoreUnavailable("locked"), "database: locked", EXIT_FAILED),
        # A policy or a signature judged inside a command is no configuration problem.
        (PolicyError("rule R: no such group"), "rule R: no such group", EXIT_FAILED),
        (SigningError("the link's context is not readable"), "the link's context is not readable", EXIT_FAILED),
        (GraphUnavailable("Graph did not answer"), "Graph did not answer", EXIT_FAILED),
        (CliError("no alert 7"), "no alert 7", 1),
        (UsageError("--since: bad"), "--since: bad", 2),
        (FilterError("page must be a whole number from 1"), "page must be a whole number from 1", EXIT_FAILED),
        # The manifest package's own root is answered in the same table.
        (ManifestError("public_url", "is empty"), "public_url: is empty", EXIT_USAGE),
        (SchemaUnavailable("schema", "npm is not installed"),
         "cannot check against Microsoft's manifest schema: npm is not installed", EXIT_FAILED),
        (PackageInvalid("p.zip", (ManifestProblem("/bots", "no bot"),)), "p.zip: the package has 1 problem(s)",
         EXIT_FAILED),
    ],
)
def test_exit_status_by_type(error: SafeLinksError | ManifestError, message: str, status: int) -> None:
    """A failed command's message and exit status follow the error's type, from one table."""
    assert failure(error) == (message, status)


def test_command_with_a_broken_policy_file_names_the_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A policy file that does not parse fails any command that opens the services with exit 2, naming the setting."""
    bad = tmp_path / "p.yaml"
    bad.write_text("policies: [{Name: P, AllowClickTrough: true}]\n", encoding="utf-8")
    for key, value in {"SAFELINKS_DATA_DIR": str(tmp_path), "SAFELINKS_SIGNING_KEYS": TEST_KEYS,
                       "SAFELINKS_SIGNING_KEY_ID": "k1", "SAFELINKS_POLICY_FILE": str(bad)}.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli(capsys, "alerts", "list")
    assert code == 2 and out == ""
    assert err.startswith("safelinks: error: bad configuration: SAFELINKS_POLICY_FILE: ") and "AllowClickTrough" in err


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (NotFound("no alert 7"), (404, "NotFound")),
        (QuarantineNotFound("no quarantined message 3"), (404, "NotFound")),
        (Forbidden("this token may not act for others"), (403, "Forbidden")),
        (InvalidChange("status must be one of ..."), (400, "BadRequest")),
        (ClickRecordError("Url is missing"), (400, "BadRequest")),
        (NotAuthorized("only members of the security channel"), (400, "BadRequest")),
        (QuarantineError("already released"), (400, "BadRequest")),
        (StoreError("disk full"), None),  # the server's failure, not the client's: a 500
        (GraphUnavailable("Graph did not answer"), None),
    ],
)
def test_http_status_by_type(error: SafeLinksError, answer: tuple[int, str] | None) -> None:
    """An API failure's HTTP status and code follow the error's type, from one table; others are a 500."""
    assert status_of(error) == answer

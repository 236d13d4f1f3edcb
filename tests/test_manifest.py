"""The Teams app manifest, its package, and the validation of both."""

from __future__ import annotations

import copy
import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from manifest import (
    ManifestError,
    ManifestProblem,
    SchemaUnavailable,
    assemble_package,
    build_package,
    ensure_schema,
    render_manifest,
    validate_manifest,
    validate_package,
)
from manifest.build import MANIFEST_DIR
from manifest.icons import color_icon_problems, outline_icon_problems
from manifest.public_url import domain_covers, parse_public_url
from manifest.schema import (
    NPM_VERSION,
    installed_version,
    load_schema,
    package_dir,
    schema_path,
)
from manifest.schema_check import python_pattern, schema_problems

REPO = Path(__file__).resolve().parents[1]
SCHEMA_CACHE = REPO / ".cache" / "app-manifest"
APP_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
OTHER_ID = "11111111-2222-4333-8444-555555555555"
PUBLIC_URL = "https://links.example.com"


@pytest.fixture(scope="session")
def schema_cache() -> Path:
    """The repository's schema cache, filled by npm on first use; skips when that cannot work."""
    started = time.perf_counter()
    fresh = installed_version(SCHEMA_CACHE) != NPM_VERSION
    try:
        ensure_schema("1.30", SCHEMA_CACHE)
    except SchemaUnavailable as exc:
        pytest.skip(f"Microsoft's manifest schema is unavailable: {exc.message}")
    if fresh:
        print(f"\nnpm install of @microsoft/app-manifest took {time.perf_counter() - started:.1f}s")
    return SCHEMA_CACHE


def png(size: tuple[int, int], mode: str, colour: Any, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def outline_png(stroke: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """A 32x32 outline icon: a square ring in `stroke` on a transparent background."""
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    for i in range(4, 28):
        for x, y in ((i, 4), (i, 27), (4, i), (27, i)):
            image.putpixel((x, y), (*stroke, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def good_files() -> dict[str, bytes]:
    manifest = render_manifest(APP_ID, PUBLIC_URL)
    return {
        "manifest.json": json.dumps(manifest).encode(),
        "color.png": (MANIFEST_DIR / "color.png").read_bytes(),
        "outline.png": (MANIFEST_DIR / "outline.png").read_bytes(),
    }


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, bytes]], None]:
    def apply(files: dict[str, bytes]) -> None:
        manifest = json.loads(files["manifest.json"])
        change(manifest)
        files["manifest.json"] = json.dumps(manifest).encode()

    return apply


def set_file(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
    def apply(files: dict[str, bytes]) -> None:
        files[name] = data

    return apply


def drop_file(name: str) -> Callable[[dict[str, bytes]], None]:
    def apply(files: dict[str, bytes]) -> None:
        del files[name]

    return apply


def into_folder(folder: str) -> Callable[[dict[str, bytes]], None]:
    def apply(files: dict[str, bytes]) -> None:
        for name in list(files):
            files[f"{folder}/{name}"] = files.pop(name)

    return apply


# (case id, change to a good package, field named, words in the message, needs the schema)
BAD_PACKAGES = [
    ("color icon size", set_file("color.png", png((100, 100), "RGB", "navy")),
     "/icons/color", "100x100", False),
    ("outline icon size", set_file("outline.png", png((48, 48), "RGBA", (255, 255, 255, 0))),
     "/icons/outline", "48x48", False),
    ("opaque outline", set_file("outline.png", png((32, 32), "RGBA", (255, 255, 255, 255))),
     "/icons/outline", "opaque", False),
    ("outline without alpha", set_file("outline.png", png((32, 32), "RGB", "white")),
     "/icons/outline", "no alpha channel", False),
    ("coloured outline", set_file("outline.png", outline_png((200, 30, 30))),
     "/icons/outline", "not white", False),
    ("empty outline", set_file("outline.png", png((32, 32), "RGBA", (255, 255, 255, 0))),
     "/icons/outline", "draws nothing", False),
    ("colour icon not png", set_file("color.png", png((192, 192), "RGB", "navy", "JPEG")),
     "/icons/color", "not PNG", False),
    ("colour icon not an image", set_file("color.png", b"not an image"),
     "/icons/color", "not a readable image", False),
    ("icon file missing", drop_file("color.png"), "/icons/color", "not a file", False),
    ("bot id differs", edit_manifest(lambda m: m["bots"][0].update(botId=OTHER_ID)),
     "/bots/0/botId", OTHER_ID, False),
    ("no webApplicationInfo", edit_manifest(lambda m: m.pop("webApplicationInfo")),
     "/webApplicationInfo", "resource-specific consent", False),
    ("no bot", edit_manifest(lambda m: m.update(bots=[])), "/bots", "no bot", False),
    ("validDomains missing", edit_manifest(lambda m: m.pop("validDomains")),
     "/validDomains", "links.example.com", False),
    ("validDomains of another host",
     edit_manifest(lambda m: m.update(validDomains=["example.org"])),
     "/validDomains", "links.example.com", False),
    ("files in a subfolder", into_folder("appPackage"),
     "zip:appPackage/manifest.json", "root of the archive", False),
    ("no manifest at the root", into_folder("appPackage"),
     "zip:manifest.json", "missing", False),
    ("extra file in a subfolder", set_file("docs/readme.txt", b"hi"),
     "zip:docs/readme.txt", "root of the archive", False),
    ("manifest not json", set_file("manifest.json", b"{not json"),
     "zip:manifest.json", "not valid UTF-8 JSON", False),
    ("manifest too large", set_file("manifest.json", b" " * ((1 << 20) + 1)),
     "zip:manifest.json", "larger than", False),
    ("short name too long", edit_manifest(lambda m: m["name"].update(short="S" * 31)),
     "/name/short", "too long", True),
    ("bad bot scope", edit_manifest(lambda m: m["bots"][0]["scopes"].append("meeting")),
     "/bots/0/scopes/3", "'meeting' is not one of", True),
    ("bad RSC type", edit_manifest(
        lambda m: m["authorization"]["permissions"]["resourceSpecific"][0].update(type="App")),
     "/authorization/permissions/resourceSpecific/0/type", "is not one of", True),
    ("missing privacy URL", edit_manifest(lambda m: m["developer"].pop("privacyUrl")),
     "/developer/privacyUrl", "required", True),
    ("unknown field", edit_manifest(lambda m: m.update(colour="#ffffff")),
     "/colour", "not allowed", True),
    ("bot id not a GUID", edit_manifest(lambda m: m["bots"][0].update(botId="my-bot")),
     "/bots/0/botId", "does not match", True),
]


def test_good_package_passes_schema_and_checks(tmp_path: Path, schema_cache: Path) -> None:
    """A built package has exactly manifest.json and the icons at its root and no problem."""
    out = build_package(APP_ID, PUBLIC_URL + "/", tmp_path / "app.zip", schema_cache=schema_cache)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    assert validate_package(out, schema_cache=schema_cache) == []
    assert validate_package(out, public_url=PUBLIC_URL, schema_cache=schema_cache) == []


def test_manifest_carries_the_deployment() -> None:
    """The app id, the public URL and the RSC permissions end up where Teams looks for them."""
    manifest = render_manifest(APP_ID.upper(), "https://links.example.com:8443/safe/")
    assert manifest["manifestVersion"] == "1.30"
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": "https://RscBasedStoreApp"}
    assert manifest["developer"] == {
        "name": "teams-safelinks",
        "websiteUrl": "https://links.example.com:8443/safe/",
        "privacyUrl": "https://links.example.com:8443/safe/privacy",
        "termsOfUseUrl": "https://links.example.com:8443/safe/terms",
    }
    assert manifest["validDomains"] == ["links.example.com:8443"]
    assert manifest["authorization"]["permissions"]["resourceSpecific"] == [
        {"name": "ChannelMessage.Read.Group", "type": "Application"},
        {"name": "ChatMessage.Read.Chat", "type": "Application"},
    ]
    bot = manifest["bots"][0]
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert (bot["supportsFiles"], bot["isNotificationOnly"]) == (False, False)
    assert [lst["scopes"] for lst in bot["commandLists"]] == [["personal"], ["team"], ["groupChat"]]
    for command_list in bot["commandLists"]:
        titles = [c["title"] for c in command_list["commands"]]
        assert titles == ["help", "check", "alerts here", "status"]
    assert "reads every message" in manifest["description"]["full"]


@pytest.mark.parametrize(
    ("change", "field", "words", "needs_schema"),
    [case[1:] for case in BAD_PACKAGES],
    ids=[case[0] for case in BAD_PACKAGES],
)
def test_bad_package_names_the_field(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    change: Callable[[dict[str, bytes]], None],
    field: str,
    words: str,
    needs_schema: bool,
) -> None:
    """Each defect of a package yields an error problem on the field at fault."""
    cache = request.getfixturevalue("schema_cache") if needs_schema else SCHEMA_CACHE
    files = good_files()
    change(files)
    path = write_zip(tmp_path / "bad.zip", files)
    problems = validate_package(path, schema_cache=cache, skip_schema=not needs_schema)
    hits = [p for p in problems if p.field == field and words in p.message]
    assert hits, f"no problem on {field} mentioning {words!r} in {problems}"
    assert all(p.severity == "error" for p in hits)


def test_not_a_zip_is_a_problem(tmp_path: Path) -> None:
    """A file that is not a zip archive is reported, not raised."""
    path = tmp_path / "app.zip"
    path.write_bytes(b"PK but not really")
    assert validate_package(path, skip_schema=True) == [
        ManifestProblem("zip:", "app.zip is not a zip archive")
    ]


def test_missing_package_raises(tmp_path: Path) -> None:
    """Validating a path that is not a file is bad input, not a problem of a package."""
    with pytest.raises(ManifestError) as caught:
        validate_package(tmp_path / "absent.zip", skip_schema=True)
    assert caught.value.field == "package"


@pytest.mark.parametrize(
    ("app_id", "public_url", "version", "field", "words"),
    [
        ("not-a-guid", PUBLIC_URL, "1.0.0", "app_id", "not a GUID"),
        ("", PUBLIC_URL, "1.0.0", "app_id", "not a GUID"),
        (APP_ID, "ftp://links.example.com", "1.0.0", "public_url", "https"),
        (APP_ID, "http://links.example.com", "1.0.0", "public_url", "must be https"),
        (APP_ID, "links.example.com", "1.0.0", "public_url", "https"),
        (APP_ID, "https://", "1.0.0", "public_url", "no host"),
        (APP_ID, "https://links.example.com/?a=1", "1.0.0", "public_url", "query"),
        (APP_ID, "https://u:p@links.example.com", "1.0.0", "public_url", "password"),
        (APP_ID, 'https://links.example.com/a"b', "1.0.0", "public_url", "escaped"),
        (APP_ID, "https://bad_host.example.com", "1.0.0", "public_url", "domain name"),
        (APP_ID, "https://links.example.com:99999", "1.0.0", "public_url", "not a URL"),
        (APP_ID, "", "1.0.0", "public_url", "empty"),
        (APP_ID, PUBLIC_URL, "1.0", "version", "1.0.0"),
        (APP_ID, PUBLIC_URL, "01.0.0", "version", "1.0.0"),
    ],
)
def test_bad_inputs_raise_naming_the_field(
    tmp_path: Path, app_id: str, public_url: str, version: str, field: str, words: str
) -> None:
    """Bad build inputs raise ManifestError naming the input, and write nothing."""
    out = tmp_path / "app.zip"
    with pytest.raises(ManifestError) as caught:
        build_package(app_id, public_url, out, version=version, skip_schema=True)
    assert caught.value.field == field
    assert words in caught.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("public_url", "domain"),
    [("http://localhost:3978", "localhost:3978"), ("http://127.0.0.1", "127.0.0.1"),
     ("http://[::1]:8080/", "[::1]:8080")],
)
def test_http_only_on_loopback_with_a_warning(tmp_path: Path, public_url: str, domain: str) -> None:
    """Plain http builds for a loopback host, with a warning that Teams needs https."""
    built = assemble_package(APP_ID, public_url, tmp_path / "dev.zip", skip_schema=True)
    assert [(p.field, p.severity) for p in built.problems] == [("/developer/websiteUrl", "warning")]
    with zipfile.ZipFile(built.path) as archive:
        assert json.loads(archive.read("manifest.json"))["validDomains"] == [domain]


def test_build_is_reproducible(tmp_path: Path) -> None:
    """Two builds from the same inputs are byte-identical, so a package can be compared by hash."""
    first = build_package(APP_ID, PUBLIC_URL, tmp_path / "a.zip", skip_schema=True)
    second = build_package(APP_ID, PUBLIC_URL, tmp_path / "b.zip", skip_schema=True)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip"]


@pytest.mark.parametrize(
    ("entry", "host", "port", "covered"),
    [
        ("links.example.com", "links.example.com", None, True),
        ("LINKS.example.com", "links.example.com", None, True),
        ("links.example.com", "links.example.com", 8443, True),
        ("links.example.com:8443", "links.example.com", 8443, True),
        ("links.example.com:8443", "links.example.com", None, False),
        ("*.example.com", "links.example.com", None, True),
        ("*.example.com", "a.links.example.com", None, False),
        ("*.example.com", "example.com", None, False),
        ("example.com", "links.example.com", None, False),
        ("[::1]:8080", "::1", 8080, True),
        ("links.example.com:x", "links.example.com", None, False),
    ],
)
def test_valid_domain_coverage(entry: str, host: str, port: int | None, covered: bool) -> None:
    """A validDomains wildcard stands for one label; a port in the entry must match."""
    assert domain_covers(entry, host, port) is covered


def test_committed_icons_meet_the_rules() -> None:
    """The shipped icons pass the icon checks and the colour icon is full-bleed."""
    color = (MANIFEST_DIR / "color.png").read_bytes()
    outline = (MANIFEST_DIR / "outline.png").read_bytes()
    assert color_icon_problems("/icons/color", "color.png", color) == []
    assert outline_icon_problems("/icons/outline", "outline.png", outline) == []
    image = Image.open(io.BytesIO(color)).convert("RGBA")
    corners = [image.getpixel(xy) for xy in ((0, 0), (191, 0), (0, 191), (191, 191))]
    assert all(pixel[3] == 255 for pixel in corners)


def test_outline_antialiasing_in_white_is_accepted() -> None:
    """Partly transparent white pixels (smooth edges) are fine in the outline icon."""
    image = Image.new("RGBA", (32, 32), (255, 255, 255, 0))
    for x in range(32):
        image.putpixel((x, 16), (255, 255, 255, x * 8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    assert outline_icon_problems("/icons/outline", "outline.png", buffer.getvalue()) == []


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^[\p{L}][\p{L}0-9._]*$", "Ärger1.x", True),
        (r"^[\p{L}][\p{L}0-9._]*$", "1abc", False),
        (r"^[\p{L}][\p{L}0-9._]*$", "ab-c", False),
        (r"^\p{L}+$", "abc", True),
        (r"^[A-Z]+$", "ABC", True),
    ],
)
def test_schema_patterns_read_as_ecmascript(pattern: str, text: str, matches: bool) -> None:
    """The schema's \\p{L} (any letter) works under Python's re."""
    import re

    assert bool(re.search(python_pattern(pattern), text)) is matches


def test_schema_cache_is_reused_without_npm(
    schema_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Once the cache holds the pinned package, finding a schema needs no npm at all."""
    monkeypatch.setenv("PATH", str(tmp_path))
    started = time.perf_counter()
    path = ensure_schema("1.30", schema_cache)
    assert time.perf_counter() - started < 0.5
    assert path == schema_path("1.30", schema_cache)
    assert path.is_file()


def test_no_schema_and_no_npm_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a cached schema and without npm, validation raises SchemaUnavailable with the fix."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchemaUnavailable) as caught:
        validate_manifest(render_manifest(APP_ID, PUBLIC_URL), schema_cache=tmp_path / "cache")
    assert "npm install --prefix" in caught.value.message
    assert "--skip-schema" in caught.value.message


def test_other_cached_version_is_not_used(tmp_path: Path) -> None:
    """A cache holding another version of the npm package does not count as the pinned one."""
    meta = package_dir(tmp_path) / "package.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"name": "@microsoft/app-manifest", "version": "0.0.1"}))
    with pytest.raises(SchemaUnavailable, match="is not installed"):
        ensure_schema("1.30", tmp_path, install=False)


@pytest.mark.parametrize("version", ["../../../etc/passwd", "1.30/../1.24", "2", 1.3])
def test_manifest_version_never_becomes_a_path(version: Any, tmp_path: Path) -> None:
    """A manifestVersion that is not a schema version is refused before any file is read."""
    with pytest.raises(SchemaUnavailable) as caught:
        schema_path(version, tmp_path)
    assert caught.value.field == "/manifestVersion"


def test_const_is_enforced(schema_cache: Path) -> None:
    """`const` (beyond draft-04, used by v1.30) is checked, as Microsoft's ajv validator does."""
    manifest = render_manifest(APP_ID, PUBLIC_URL)
    manifest["manifestVersion"] = "1.29"
    problems = schema_problems(manifest, load_schema("1.30", schema_cache))
    assert problems == [ManifestProblem("/manifestVersion", "'1.30' was expected")]


def test_unbundled_manifest_version_is_unavailable(schema_cache: Path) -> None:
    """A version the npm package does not bundle is reported as such."""
    manifest = copy.deepcopy(render_manifest(APP_ID, PUBLIC_URL))
    manifest["manifestVersion"] = "1.99"
    with pytest.raises(SchemaUnavailable, match="bundles no schema"):
        validate_manifest(manifest, schema_cache=schema_cache)


def test_public_url_keeps_path_and_port() -> None:
    """The public URL keeps a path prefix and an explicit port, and loses a trailing slash."""
    url = parse_public_url("HTTPS://Links.Example.com:8443/safe/")
    assert (url.base, url.domain, url.is_loopback) == (
        "https://links.example.com:8443/safe", "links.example.com:8443", False)


def run_cli(argv: list[str]) -> int:
    from safelinks.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_cli_build_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`manifest build` writes the package and says valid; `manifest validate` agrees."""
    out = tmp_path / "var" / "pkg.zip"
    code = run_cli(["manifest", "build", "--app-id", APP_ID, "--public-url", PUBLIC_URL,
                    "--out", str(out), "--skip-schema"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"wrote {out}" in printed and "valid (schema check skipped)" in printed
    assert run_cli(["manifest", "validate", str(out), "--skip-schema"]) == 0


def test_cli_build_with_schema(
    tmp_path: Path, schema_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the schema at hand, `manifest build` checks against it and prints plain "valid"."""
    out = tmp_path / "pkg.zip"
    code = run_cli(["manifest", "build", "--app-id", APP_ID, "--public-url", PUBLIC_URL,
                    "--out", str(out), "--schema-cache", str(schema_cache)])
    assert code == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}: valid"


@pytest.mark.parametrize(
    ("argv", "code", "stream", "words"),
    [
        (["build", "--app-id", "nope", "--public-url", PUBLIC_URL], 2, "err", "app_id"),
        (["build", "--app-id", APP_ID, "--public-url", "http://example.com"], 2, "err", "https"),
        (["validate", "{tmp}/absent.zip"], 2, "err", "is not a file"),
        (["validate", "{tmp}/bad.zip"], 1, "out", "/bots/0/botId"),
        (["validate", "{tmp}/bad.zip", "--public-url", "https://other.example.org"], 1, "out",
         "other.example.org"),
        (["validate", "{tmp}/bad.zip", "--public-url", "ftp://x"], 2, "err", "public_url"),
    ],
)
def test_cli_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], code: int, stream: str, words: str,
) -> None:
    """The CLI exits 1 on package problems and 2 on bad arguments, saying why."""
    files = good_files()
    edit_manifest(lambda m: m["bots"][0].update(botId=OTHER_ID))(files)
    write_zip(tmp_path / "bad.zip", files)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "build":
        argv += ["--out", str(tmp_path / "out.zip"), "--skip-schema"]
    else:
        argv += ["--skip-schema"]
    assert run_cli(["manifest", *argv]) == code
    captured = capsys.readouterr()
    assert words in (captured.err if stream == "err" else captured.out)


def test_cli_without_schema_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without npm or a cached schema the CLI exits 1, says how to install, and writes nothing."""
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "pkg.zip"
    code = run_cli(["manifest", "build", "--app-id", APP_ID, "--public-url", PUBLIC_URL,
                    "--out", str(out), "--schema-cache", str(tmp_path / "cache")])
    assert code == 1
    assert "npm install --prefix" in capsys.readouterr().err
    assert not out.exists()


def test_cli_missing_required_argument() -> None:
    """argparse itself rejects a build without --app-id with exit code 2."""
    assert run_cli(["manifest", "build", "--public-url", PUBLIC_URL]) == 2


def test_cli_build_names_the_public_url_a_browser_opens(tmp_path: Path) -> None:
    """`manifest build --public-url` reads the URL as a browser does: the package names the host it opens."""
    out = tmp_path / "pkg.zip"
    assert run_cli(["manifest", "build", "--app-id", APP_ID, "--public-url", "https://Links.Example.com\\safe\\",
                    "--out", str(out), "--skip-schema"]) == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert "links.example.com" in manifest["validDomains"]
    assert "\\" not in json.dumps(manifest) and "Links.Example" not in json.dumps(manifest)

"""deploy/: the systemd unit passes systemd's own checks, and the nginx example keeps /metrics private and
sets HSTS in front of a real service."""

from __future__ import annotations

import asyncio
import datetime
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from safelinks.server import create_app
from shared.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
INSTALLED = "/opt/safelinks/venv"


def _unit_for_here(tmp_path: Path) -> Path:
    # The unit names the documented install prefix; point it at this venv so the binaries exist.
    unit = tmp_path / "safelinks.service"
    unit.write_text((DEPLOY / "safelinks.service").read_text().replace(INSTALLED, sys.prefix))
    return unit


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning (unknown keys included)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (no systemd): the unit cannot be verified")
    done = subprocess.run(["systemd-analyze", "verify", str(_unit_for_here(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_systemd_unit_runs_unprivileged_with_an_absolute_data_dir(tmp_path: Path) -> None:
    """The unit runs as a dedicated user, keeps its data in an absolute directory and is well confined."""
    text = (DEPLOY / "safelinks.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert settings["User"] == "safelinks" and settings["StateDirectory"] == "safelinks"
    data_dir = re.search(r"^Environment=SAFELINKS_DATA_DIR=(.*)$", text, re.M)
    assert data_dir and data_dir.group(1) == "/var/lib/safelinks"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here: the exposure score cannot be measured")
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(_unit_for_here(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert score is not None, done.stdout + done.stderr
    assert float(score.group(1)) <= 2.0  # systemd rates up to 2.0 as "OK", the best of its bands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "links.contoso.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
async def nginx_in_front(tmp_path: Path, make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[str, str]]:
    """The service on loopback, and nginx running deploy/nginx.conf in front of it: (https base, http base)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed here: the example cannot be run")
    server = TestServer(create_app(make_settings(access_log=True)), host="127.0.0.1")
    await server.start_server()
    cert, key = _self_signed(tmp_path)
    https, http = _free_port(), _free_port()
    site = (DEPLOY / "nginx.conf").read_text()
    site = (site.replace("127.0.0.1:3978", f"127.0.0.1:{server.port}")
            .replace("listen 443", f"listen 127.0.0.1:{https}").replace("listen 80", f"listen 127.0.0.1:{http}")
            .replace("/etc/ssl/certs/links.contoso.com.pem", str(cert))
            .replace("/etc/ssl/private/links.contoso.com.key", str(key)))
    site = re.sub(r"^\s*listen \[::\]:\d+.*$", "", site, flags=re.M)  # loopback only in the test
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"user root; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path}; "
        f"include {tmp_path}/site.conf; }}\n")
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.fail("nginx did not start: " + (proc.stderr.read() if proc.stderr else ""))
            try:
                socket.create_connection(("127.0.0.1", https), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}"
    finally:
        proc.terminate()
        proc.wait(10)
        await server.close()


async def test_nginx_example_keeps_metrics_private_and_sets_hsts(nginx_in_front: tuple[str, str]) -> None:
    """Through deploy/nginx.conf: /metrics is not reachable, answers carry HSTS, plain http redirects."""
    https, http = nginx_in_front
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    headers = {"Host": "links.contoso.com"}
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{https}/metrics", ssl=context, headers=headers) as r:
            assert r.status == 404 and "safelinks_" not in await r.text()
        async with client.get(f"{https}/healthz", ssl=context, headers=headers) as r:
            assert r.status == 200
            assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])  # nginx's id, passed through
        async with client.get(f"{https}/privacy", ssl=context, headers=headers) as r:
            assert r.status == 200 and "Strict-Transport-Security" in r.headers
        async with client.get(f"{http}/v1/url?x=1", headers=headers, allow_redirects=False) as r:
            assert r.status == 301 and r.headers["Location"] == "https://links.contoso.com/v1/url?x=1"


def test_caddy_example_is_valid(tmp_path: Path) -> None:
    """`caddy validate` accepts deploy/Caddyfile (where Caddy is installed)."""
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed here: the Caddyfile cannot be validated")
    done = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_example_config_passes_config_check(tmp_path: Path) -> None:
    """deploy/config.yaml is a valid configuration (`safelinks config check`)."""
    done = subprocess.run([sys.executable, "-m", "safelinks", "config", "check", "--config",
                           str(DEPLOY / "config.yaml")], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "SAFELINKS_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0 and "configuration is valid" in done.stdout, done.stderr

"""deploy/systemd: the units pass ``systemd-analyze verify`` and keep their hardening."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/secretsd/bin/secretsd"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "DynamicUser": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().replace("\\\n", " ").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("name", ["secretsd-server.service", "secretsd-agent.service"])
def test_unit_verifies(name, tmp_path):
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # verify checks that ExecStart's program exists: point it at this checkout's command.
    secretsd = Path(sys.executable).with_name("secretsd")
    unit = tmp_path / name
    unit.write_text((UNITS / name).read_text().replace(INSTALLED, str(secretsd)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert name not in done.stderr, done.stderr  # warnings about the unit itself


@pytest.mark.parametrize("name", ["secretsd-server.service", "secretsd-agent.service"])
def test_unit_hardening(name):
    found = settings(UNITS / name)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], key
    assert int(found["LimitNOFILE"][0]) >= 4096


def test_server_unit_keeps_its_data_and_key_where_systemd_puts_them():
    found = settings(UNITS / "secretsd-server.service")
    assert found["StateDirectory"] == ["secretsd"]
    assert found["LoadCredential"] == ["master.key:/etc/secretsd/master.key"]
    [start] = found["ExecStart"]
    assert "--data-dir ${STATE_DIRECTORY}" in start
    assert '--master-key-command "/bin/cat %d/master.key"' in start
    # The connection cap stays below the open-file limit, with room for the store and logs.
    cap = int(start.split("--max-connections")[1].split()[0])
    assert cap + 1000 <= int(found["LimitNOFILE"][0])

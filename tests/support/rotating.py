"""A server whose scheduler is quick, with two rotation functions that misbehave on purpose."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.server import ServerProcess, start_server


def start_rotating_server(tmp_path: Path) -> ServerProcess:
    """A server with ``always-fails`` (every step exits with an error) and ``waits-for-gate``
    (blocks until ``server.gate`` exists, to look at a rotation in the middle)."""
    gate = tmp_path / "gate"
    fails = tmp_path / "fails.py"
    fails.write_text("import sys\nsys.stdin.read()\nsys.exit('database refused: boom')\n")
    waits = tmp_path / "waits.py"
    waits.write_text(
        f"import os, sys, time\nwhile not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.02)\nsys.exit(1)\n"
    )
    config = tmp_path / "rotation.toml"
    python = json.dumps(sys.executable)
    config.write_text(
        f"[functions.always-fails]\ncommand = [{python}, {json.dumps(str(fails))}]\n"
        f"[functions.waits-for-gate]\ncommand = [{python}, {json.dumps(str(waits))}]\n"
    )
    server = start_server(
        tmp_path / "data",
        "--rotation-config",
        str(config),
        "--scheduler-interval",
        "0.1",
        "--rotation-retry-base",
        "0.2",
    )
    server.gate = gate  # type: ignore[attr-defined]
    return server

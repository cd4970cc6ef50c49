"""Running the docs' shell examples as written: their blocks, and a shell like a user's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
# What a block must not do here: start another server (the test runs one already).
STARTS_A_SERVER = re.compile(r"secretsd (server|agent|up)\b|^make ", re.M)


def shell_blocks(path: str, heading: str) -> list[str]:
    """The shell blocks of the section ``heading`` of ``path`` that talk to a running system."""
    text = (ROOT / path).read_text()
    start = text.index(heading + "\n")
    following = text.find("\n## ", start + len(heading))
    section = text[start : following if following != -1 else len(text)]
    blocks = [b for b in BLOCK.findall(section) if not STARTS_A_SERVER.search(b)]
    assert blocks, f"{path}: no runnable shell example under {heading!r}"
    return blocks


def user_environment(**extra: str) -> dict[str, str]:
    """A user's shell after `make up`: this venv's commands on PATH, no AWS settings of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETSD_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["AWS_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def run_shell(
    script: str, cwd: Path, env: dict[str, str], *, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``script`` under ``bash -euo pipefail``, as a careful user would paste it."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )

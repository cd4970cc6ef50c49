"""The Lambda package runs on its own: no secretsd import, a rotation through the zip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Runs in a child interpreter where importing secretsd fails, with only the zip added.
CHILD = """
import importlib, json, sys
sys.modules["secretsd"] = None
sys.path.insert(0, sys.argv[1])
for module in json.loads(sys.argv[2]):
    importlib.import_module("secretsd_rotation." + module)
from secretsd_rotation import generic
event = {"SecretId": sys.argv[3], "ClientRequestToken": sys.argv[4]}
for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
    generic.lambda_handler({**event, "Step": step}, None)
print("rotated")
"""


def test_the_zip_rotates_a_secret_without_secretsd(rotations, tmp_path):
    from secretsd.rotation.functions import FUNCTIONS

    built = subprocess.run(
        [sys.executable, str(ROOT / "deploy/lambda/package.py"), "--no-dependencies",
         "--output", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    archive = built.stdout.strip()
    assert archive.endswith(".zip")
    arn = rotations.create("zip-generic", {"api_key": "k0"})
    token = rotations.begin(arn)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, archive, json.dumps(list(FUNCTIONS.values())), arn, token],
        capture_output=True, text=True, env=dict(os.environ), cwd=tmp_path, timeout=60,
    )  # fmt: skip

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "rotated"
    assert rotations.value(arn)["api_key"] != "k0"
    assert "AWSCURRENT" in rotations.stages(arn)[token]

"""Build the rotation functions as one AWS Lambda deployment package (a zip).

    python deploy/lambda/package.py [--output DIR] [--arch x86_64|arm64]
                                    [--python-version 3.11] [--no-dependencies]

The zip holds the package ``src/secretsd/rotation/functions`` under the name
``secretsd_rotation`` (its modules import each other relatively, so the name is free) and,
unless ``--no-dependencies``, PyMySQL and psycopg 3 (binary wheels for Lambda's Linux,
fetched with pip). boto3 comes with the Lambda Python runtime. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "secretsd" / "rotation" / "functions"
PACKAGE = "secretsd_rotation"
DEPENDENCIES = ("PyMySQL>=1.1", "psycopg[binary]>=3.1")
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def install_dependencies(target: Path, arch: str, python_version: str) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
            "--platform", PLATFORMS[arch], "--implementation", "cp",
            "--python-version", python_version, "--only-binary=:all:", *DEPENDENCIES,
        ],
        check=True,
    )  # fmt: skip


def build(output: Path, arch: str, python_version: str, dependencies: bool) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    archive = output / f"secretsd-rotation-functions-{arch}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        shutil.copytree(SOURCE, staging / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        if dependencies:
            install_dependencies(staging, arch, python_version)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(staging.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(staging).as_posix())
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--python-version", default="3.11")
    parser.add_argument(
        "--no-dependencies",
        action="store_true",
        help="package only the functions (for a layer that brings the drivers, or tests)",
    )
    args = parser.parse_args(argv)
    archive = build(args.output, args.arch, args.python_version, not args.no_dependencies)
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())

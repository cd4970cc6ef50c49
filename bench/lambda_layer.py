"""The self-contained agent layer: its size, its start time and its memory at rest.

Runs the layer from ``make layer`` the way Lambda does, in a bare Debian bullseye root (no
Python in it), against a fake Lambda Extensions API and a secretsd server on loopback:

1. Layer size, zipped and unzipped (Lambda's limit: 250 MB unzipped for a function and all
   its layers together).
2. Time from exec to the first 200 from ``/ping``, the part of a cold start the agent adds
   before it can answer. Target: at most 250 ms. Median and worst of ``--runs`` starts.
3. Resident memory at rest: after start and one secret served from the cache.

The same measures for the agent run by this checkout's Python (the layer for Python
runtimes) are printed beside them as the peer. Needs root and the cache ``make layer`` fills.

    .venv/bin/python bench/lambda_layer.py [--runs 5]
"""

from __future__ import annotations

import argparse
import configparser
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "lambda"))
import build_layer  # noqa: E402
from tests.agent.test_lambda_extension import FakeExtensionsApi, free_port  # noqa: E402
from tests.support.server import start_server, stop_process  # noqa: E402

TOKEN = "bench-session-token"


def sizes(layer: Path) -> tuple[int, int]:
    with zipfile.ZipFile(layer) as zf:
        return layer.stat().st_size, sum(info.file_size for info in zf.infolist())


def ping_ok(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/ping")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def get_secret(port: int, name: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "GET",
        f"/secretsmanager/get?secretId={name}",
        headers={"X-Aws-Parameters-Secrets-Token": TOKEN},
    )
    status = connection.getresponse().status
    connection.close()
    return status


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def one_start(command: list[str], env: dict[str, str], secret: str) -> tuple[float, int]:
    """Seconds from exec to the first /ping answer, and RSS (KiB) once a secret is cached."""
    fake = FakeExtensionsApi()
    port = free_port()
    env = {
        **env,
        "AWS_LAMBDA_RUNTIME_API": fake.address,
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(port),
    }
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Polled as the function would call it; 2 ms between tries bounds the error.
        while not ping_ok(port):
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
            if time.perf_counter() - started > 30:
                raise RuntimeError("no /ping answer in 30 s")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        if get_secret(port, secret) != 200 or get_secret(port, secret) != 200:
            raise RuntimeError("the agent did not serve the secret")
        return elapsed, rss_kib(process.pid)
    finally:
        fake.events.put({"eventType": "SHUTDOWN", "shutdownReason": "spindown"})
        stop_process(process)
        fake.close()


def measure(label: str, command: list[str], env: dict[str, str], secret: str, runs: int) -> None:
    results = [one_start(command, env, secret) for _ in range(runs)]
    times = [t * 1000 for t, _ in results]
    rss = statistics.median(r for _, r in results) / 1024
    print(
        f"{label:<34} first /ping: median {statistics.median(times):6.0f} ms, "
        f"worst {max(times):6.0f} ms; RSS at rest {rss:5.1f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    layer = build_layer.cached_layer(build_layer.DEFAULT_CACHE)
    base = build_layer.DEFAULT_CACHE / "roots" / f"{build_layer.SUITE}-minbase-x86_64"
    if not layer.exists() or not base.exists():
        print("run `make layer` first (as root)", file=sys.stderr)
        return 2
    zipped, unzipped = sizes(layer)
    print(f"layer size: {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped")

    root = build_layer.DEFAULT_CACHE / "roots" / f"bench-{os.getpid()}"
    build_layer.remove_root(root)
    build_layer.copy_root(base, root)
    data = tempfile.TemporaryDirectory()
    server = start_server(Path(data.name))
    try:
        build_layer.unpack(layer, root / "opt")
        secret = "bench/layer"
        server.client().create_secret(Name=secret, SecretString="x" * 64)
        credentials = configparser.ConfigParser()
        credentials.read(server.credentials_file)
        with (root / "tmp" / "credentials").open("w") as handle:
            credentials.write(handle)
        common = {
            "AWS_SESSION_TOKEN": TOKEN,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",  # Lambda sets both
            "AWS_PROFILE": "secretsd",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": server.endpoint_url,
        }
        frozen_env = {
            **build_layer.chroot_env(),
            **common,
            "AWS_SHARED_CREDENTIALS_FILE": "/tmp/credentials",
        }
        with build_layer.proc_mounted(root):
            measure(
                "layer, in bullseye (no Python)",
                ["chroot", str(root), "/opt/extensions/secretsd-agent"],
                frozen_env,
                secret,
                args.runs,
            )
        python_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **common,
            "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        }
        measure(
            "peer: this checkout's python3",
            [sys.executable, "-m", "secretsd.cli", "agent"],
            python_env,
            secret,
            args.runs,
        )
    finally:
        server.stop()
        data.cleanup()
        build_layer.remove_root(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

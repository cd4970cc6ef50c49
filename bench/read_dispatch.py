"""GetSecretValue with reads on the event loop against reads on a thread pool, same run.

The server's choice (``secretsd.server``: reads go to threads only when the store says they
may block) rests on this measurement. The same ASGI app runs under uvicorn+uvloop in a child
process, once per mode, modes alternating to spread machine noise, driven by wrk with
unsigned requests. Besides throughput and latency it reports the server's CPU time per
request, which a busy machine distorts least.

    .venv/bin/python bench/read_dispatch.py [--database-url postgresql://...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys
from pathlib import Path
from secretsd.api.app import ApiApp
from secretsd.server import _run_uvicorn, bind
from secretsd.service import AccessRecorder, SecretsService
from secretsd.store import open_storage

data, url = Path(sys.argv[1]), sys.argv[2] or None
threads, port = int(sys.argv[3]), int(sys.argv[4])
env = {"SECRETSD_MASTER_KEY": os.environ["BENCH_MASTER_KEY"]}
storage = open_storage(data, url, env, schema="bench_read_dispatch", pool_size=threads + 4)
service = SecretsService(storage, accesses=AccessRecorder(storage))
if storage.load_by_name("bench") is None:
    service.call(
        "CreateSecret",
        {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": "a" * 32},
    )
app = ApiApp(service, None, read_threads=threads)
sock = bind("127.0.0.1", port)
print("ready", flush=True)
_run_uvicorn(app, sock, "warning")
"""

WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"SecretId":"bench"}'
wrk.headers["X-Amz-Target"] = "secretsmanager.GetSecretValue"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run(data: Path, url: str, threads: int, connections: int, seconds: int) -> dict:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), url, str(threads), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
            + [f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        os.unlink(script.name)
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        child.terminate()
        child.wait(10)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"\s(50|99)%\s+([\d.]+\w+)", out)}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": pct["50"],
        "p99_ms": pct["99"],
        "cpu_us_per_request": cpu / requests * 1e6,
        "non2xx": "Non-2xx" in out,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    os.environ["BENCH_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    data = Path(tempfile.mkdtemp(prefix="read-dispatch-"))
    for connections in (1, 16):
        results: dict[str, list[dict]] = {"on loop": [], "threads": []}
        for _ in range(args.rounds):
            results["on loop"].append(run(data, args.database_url, 0, connections, args.seconds))
            time.sleep(0.2)
            results["threads"].append(
                run(data, args.database_url, args.threads, connections, args.seconds)
            )
        for mode, rows in results.items():
            line = {key: [round(r[key], 2) for r in rows] for key in rows[0] if key != "non2xx"}
            bad = any(r["non2xx"] for r in rows)
            print(f"c={connections:<2} {mode:8} {line}{' NON-2XX ANSWERS' if bad else ''}")
    if args.database_url:
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_read_dispatch CASCADE")


if __name__ == "__main__":
    main()

"""secretsd server against moto_server, same run, same load; then secretsd at scale.

Both servers run on loopback. GetSecretValue is measured with wrk replaying one SigV4-signed
request (secretsd verifies the signature and decrypts on every call; moto does neither);
PutSecretValue with 16 boto3 threads, each on its own secret (secretsd acknowledges only
durable writes; concurrent writes share one fsync); ListSecrets as the latency of a page of
100 while paging through every secret. Both servers are compared holding ``--small``
secrets. Then secretsd is filled to ``--secrets`` (written through the store, see
bench/listing_load.py) and measured again: the flatness ratios compare the two sizes, the
stall ratio compares GetSecretValue's p99 while two clients page through ListSecrets
without pause with its p99 when idle. Last, GetSecretValue signed by an IAM user with three
inline policies (one with a condition on the secret's tags) against the root key, in
alternating rounds on the same secret: the cost of authorization (and of whatever else a
user's request pays, the audit trail included) as a share of throughput.

    .venv/bin/python bench/server.py [--seconds 10] [--connections 16] [--secrets 100000]
                                     [--metrics]
    .venv/bin/python bench/server.py --authorization-only [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.listing_load import Listers, fill_store, page_latency
from bench.request_path import USER_POLICIES
from tests.support.server import start_server

REGION = "us-east-1"
VALUE = json.dumps({"username": "app", "password": "x" * 24, "host": "db.internal", "port": 3306})


class Target:
    def __init__(
        self, name: str, url: str, key: str, secret: str, stop, data_dir: Path | None = None
    ) -> None:
        self.name, self.url, self.key, self.secret, self.stop = name, url, key, secret, stop
        self.data_dir = data_dir
        self.pid: int | None = None  # the server process, whose CPU time is read
        self.client = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=32),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_secretsd(workdir: Path, metrics: bool = False) -> Target:
    # --metrics: as a server that Prometheus scrapes runs (requests counted, store timed).
    extra, env = (), None
    if metrics:
        extra, env = ("--metrics",), {**os.environ, "SECRETSD_METRICS_TOKEN": "bench-" * 4}
    server = start_server(workdir / "secretsd", *extra, env=env)
    session = server.session()
    creds = session.get_credentials()
    target = Target(
        "secretsd",
        server.endpoint_url,
        creds.access_key,
        creds.secret_key,
        server.stop,
        server.data_dir,
    )
    target.pid = server.process.pid
    return target


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_moto() -> Target:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    return Target("moto", f"http://127.0.0.1:{port}", "AKIAMOTO", "moto-secret", stop)


def signed_get(target: Target, secret_id: str) -> tuple[str, dict[str, str], str]:
    body = json.dumps({"SecretId": secret_id})
    request = AWSRequest(
        method="POST",
        url=target.url + "/",
        data=body,
        headers={
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(target.key, target.secret), "secretsmanager", REGION).add_auth(request)
    return target.url + "/", dict(request.headers.items()), body


def run_wrk(target: Target, secret_id: str, seconds: int, connections: int) -> dict[str, float]:
    url, headers, body = signed_get(target, secret_id)
    lua = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lua += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    # Count non-200 answers so a broken signature cannot pass for throughput.
    lua.append(
        "errors = 0\nresponse = function(status, headers, body) "
        "if status ~= 200 then errors = errors + 1 end end\n"
        "done = function(summary, latency, requests) "
        'io.write(string.format("non200 %d\\n", errors)) end'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua))
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non200 = int(re.search(r"non200 (\d+)", out).group(1))
    # wrk with a response() callback reports the distribution; p50/p99 from --latency.
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"\s(50|99)%\s+([\d.]+\w+)", out)}
    return {
        "rps": rps,
        "p50_ms": pct.get("50", float("nan")),
        "p99_ms": pct.get("99", float("nan")),
        "non200": non200,
    }


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def put_rate(target: Target, seconds: float, threads: int = 16) -> float:
    """PutSecretValue calls per second from ``threads`` clients, each on a secret of its own."""
    names = [f"bench/put-{uuid.uuid4().hex[:8]}" for _ in range(threads)]
    for name in names:
        target.client.create_secret(Name=name, SecretString=VALUE)
    stop_at = time.monotonic() + seconds
    counts = [0] * threads

    def worker(i: int) -> None:
        while time.monotonic() < stop_at:
            target.client.put_secret_value(
                SecretId=names[i],
                SecretString=VALUE + str(counts[i]),
                ClientRequestToken=str(uuid.uuid4()),
            )
            counts[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def fill(target: Target, start: int, stop: int) -> None:
    if target.data_dir is not None:
        took = fill_store(target.data_dir, start, stop, VALUE)
        print(f"  (secretsd: {stop - start} secrets written in {took:.1f} s)", flush=True)
        return

    def create(i: int) -> None:
        target.client.create_secret(Name=f"bench/fill/{i:06d}", SecretString=VALUE)

    # moto_server answers concurrent CreateSecret calls with 500s: fill it from one thread.
    with ThreadPoolExecutor(1) as pool:
        list(pool.map(create, range(start, stop)))


def measure(target: Target, args: argparse.Namespace, label: str) -> dict[str, float]:
    name = f"bench/get-{uuid.uuid4().hex[:8]}"
    target.client.create_secret(Name=name, SecretString=VALUE)
    result = run_wrk(target, name, args.seconds, args.connections)
    result["put_per_s"] = put_rate(target, min(args.seconds, 5))
    listed = page_latency(target, min(args.seconds, 5))
    result.update({f"list_{k}": v for k, v in listed.items()})
    print(
        f"  {target.name:9} {label:16} GetSecretValue {result['rps']:7.0f}/s "
        f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:6.2f} ms "
        f"(non-200: {result['non200']:.0f})  PutSecretValue {result['put_per_s']:5.0f}/s  "
        f"ListSecrets page p50 {listed['p50_ms']:6.2f} ms p99 {listed['p99_ms']:6.2f} ms "
        f"({listed['pages']:.0f} pages in {listed['walk_s']:.2f} s)",
        flush=True,
    )
    result["name"] = name
    return result


def stalled(target: Target, args: argparse.Namespace, name: str) -> dict[str, float]:
    with Listers(target, 2) as listers:
        result = run_wrk(target, name, args.seconds, args.connections)
    print(
        f"  {target.name:9} {'+2 listing':16} GetSecretValue {result['rps']:7.0f}/s "
        f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:6.2f} ms "
        f"(non-200: {result['non200']:.0f}; {listers.pages} pages listed meanwhile)",
        flush=True,
    )
    return result


def user_target(root: Target) -> Target:
    """A user tagged team=bench with three inline policies, one conditioned on a tag."""
    iam = boto3.client(
        "iam",
        endpoint_url=root.url,
        region_name=REGION,
        aws_access_key_id=root.key,
        aws_secret_access_key=root.secret,
    )
    name = f"bench-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "bench"}])
    for index, statement in enumerate(USER_POLICIES):
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        iam.put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Target(name, root.url, key["AccessKeyId"], key["SecretAccessKey"], lambda: None)


def authorization_cost(root: Target, args: argparse.Namespace) -> float:
    """User over root GetSecretValue throughput, alternating rounds on one secret."""
    user = user_target(root)
    name = f"bench/authz-{uuid.uuid4().hex[:8]}"
    root.client.create_secret(
        Name=name, SecretString=VALUE, Tags=[{"Key": "team", "Value": "bench"}]
    )
    user.client.get_secret_value(SecretId=name)  # allowed, or the bench is wrong
    assert root.pid is not None
    totals = {"root": 0.0, "user": 0.0}
    # The server's CPU time per request: throughput on a machine shared with the load
    # generator (and anything else running) swings from round to round, this much less.
    cpu = {"root": 0.0, "user": 0.0}
    served = {"root": 0.0, "user": 0.0}
    for round_ in range(args.rounds):
        for label, target in (("root", root), ("user", user)):
            before = cpu_seconds(root.pid)
            result = run_wrk(target, name, args.seconds, args.connections)
            used = cpu_seconds(root.pid) - before
            if result["non200"]:
                raise RuntimeError(f"{label}: {result['non200']:.0f} answers were not 200")
            totals[label] += result["rps"]
            cpu[label] += used
            served[label] += result["rps"] * args.seconds
            print(
                f"  round {round_ + 1} {label:4} GetSecretValue {result['rps']:7.0f}/s "
                f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:6.2f} ms "
                f"server CPU {used / (result['rps'] * args.seconds) * 1e6:6.1f} us/request",
                flush=True,
            )
    ratio = totals["user"] / totals["root"]
    per_request = {label: cpu[label] / served[label] for label in cpu}
    cpu_ratio = per_request["root"] / per_request["user"]
    print(
        f"  user with 3 policies / root: GetSecretValue throughput {ratio:.3f} "
        f"(cost {100 * (1 - ratio):.1f}%); server CPU per request "
        f"{per_request['root'] * 1e6:.1f} / {per_request['user'] * 1e6:.1f} us, "
        f"throughput it allows {cpu_ratio:.3f} (cost {100 * (1 - cpu_ratio):.1f}%, "
        "target at most 15%)",
        flush=True,
    )
    return cpu_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--small", type=int, default=100, help="secrets in the compared stores")
    parser.add_argument("--secrets", type=int, default=100_000, help="secretsd's large store")
    parser.add_argument("--metrics", action="store_true", help="run secretsd with --metrics")
    parser.add_argument("--rounds", type=int, default=3, help="root/user rounds (3)")
    parser.add_argument(
        "--authorization-only",
        action="store_true",
        help="measure only a user's GetSecretValue against root's",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="secretsd-bench-"))
    if args.authorization_only:
        secretsd = start_secretsd(workdir, args.metrics)
        try:
            print("authorization:", flush=True)
            authorization_cost(secretsd, args)
        finally:
            secretsd.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    secretsd, moto = targets = [start_secretsd(workdir, args.metrics), start_moto()]
    small, large = f"{args.small} secrets", f"{args.secrets} secrets"
    try:
        print(f"{small}:", flush=True)
        for target in targets:
            fill(target, 0, args.small)
        ours, peer = measure(secretsd, args, small), measure(moto, args, small)
        print(
            "  ratio secretsd/moto: GetSecretValue throughput "
            f"{ours['rps'] / peer['rps']:.1f}x, "
            f"p99 {peer['p99_ms'] / ours['p99_ms']:.1f}x lower, "
            f"PutSecretValue {ours['put_per_s'] / peer['put_per_s']:.1f}x, "
            f"ListSecrets page p50 {peer['list_p50_ms'] / ours['list_p50_ms']:.1f}x lower",
            flush=True,
        )
        print(f"{large} (secretsd only):", flush=True)
        fill(secretsd, args.small, args.secrets)
        big = measure(secretsd, args, large)
        busy = stalled(secretsd, args, big["name"])
        print(
            f"  flatness {large} / {small}: "
            f"ListSecrets page p50 {big['list_p50_ms'] / ours['list_p50_ms']:.2f}x (target 1.5), "
            f"GetSecretValue p50 {big['p50_ms'] / ours['p50_ms']:.2f}x (target 1.2)\n"
            f"  stall at {large}: GetSecretValue p99 with two clients listing / idle "
            f"{busy['p99_ms'] / big['p99_ms']:.2f}x (target 2)",
            flush=True,
        )
        print("authorization:", flush=True)
        authorization_cost(secretsd, args)
    finally:
        for target in targets:
            target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

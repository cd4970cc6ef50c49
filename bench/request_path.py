"""The GetSecretValue request path in process: what one request costs, without the network.

The ASGI app is built as ``secretsd server`` builds it (SQLite store with values encrypted at
rest, the service, the SigV4 verifier) and called with one request signed by botocore, the
way wrk replays one in bench/server.py. No event loop and no sockets: the app's coroutine is
driven by hand, so what is measured is our code (signature check, JSON, store read,
decryption, response) and nothing of uvicorn's.

Three ways to look at it, each signed by the root key or, with ``--user``, by an IAM user
with three inline policies (one with a condition on the secret's tags), which pays for
looking up its key in the store and for authorization:

    .venv/bin/python bench/request_path.py [--user]           # microseconds per request
    .venv/bin/python bench/request_path.py --profile          # cProfile, by own time
    .venv/bin/python bench/request_path.py --instructions     # instructions per request

``--metrics`` builds the app as ``secretsd server --metrics`` does (requests counted, the
store timed), to compare the cost of the metrics with the same measure off and on.

``--audit`` builds the app with the audit trail the server has (DATA_DIR/audit.log), so the
same figures with and without it give what recording every call costs.

``--instructions`` runs this script under ``valgrind --tool=callgrind`` and reports the
instructions per request, and per call of the steps that cost most (``pieces``), counted in
their loops only. Instruction counts barely move with machine load, unlike wall-clock time, which
makes them the number to compare before and after a change on a busy machine.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import logging
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from secretsd import logs
from secretsd.api.app import ApiApp, decode_json, encode, request_context
from secretsd.api.auth import Authenticator
from secretsd.api.credentials import AccessKey, Keyring
from secretsd.api.metrics import RequestStats
from secretsd.model.policy import RequestContext, evaluate
from secretsd.service import SecretsService
from secretsd.service.audit import ApiCall
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.authorization import NOWHERE
from secretsd.service.identities import IdentityService
from secretsd.service.timed_storage import TimedStorage
from secretsd.store import open_audit_log, open_storage

REGION = "us-east-1"
ACCESS_KEY = "AKIABENCHREQUESTPATH"
SECRET_KEY = "benchmark/secret/access/key/0123456789ab"
NAME = "bench/db-credentials"
VALUE = json.dumps({"username": "app", "password": "x" * 24, "host": "db.internal", "port": 3306})
HOST = "127.0.0.1:8787"
USER_POLICIES = (
    {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"},
    {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"],
        "Resource": "arn:aws:secretsmanager:*:*:secret:bench/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
    },
    {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"},
)


class RequestPath:
    """One app over a fresh store holding one secret with a current and a previous version."""

    def __init__(
        self, data_dir: Path, metrics: bool = False, audit: bool = False, as_user: bool = False
    ) -> None:
        self.storage = open_storage(data_dir, env={}, mode="create")
        if metrics:
            self.storage = TimedStorage(self.storage)
        self.service = SecretsService(self.storage)
        self.service.call(
            "CreateSecret",
            {
                "Name": NAME,
                "SecretString": VALUE + " ",
                "ClientRequestToken": "a" * 32,
                "Tags": [{"Key": "team", "Value": "b"}],
            },
        )
        self.service.call(
            "PutSecretValue",
            {"SecretId": NAME, "SecretString": VALUE, "ClientRequestToken": "b" * 32},
        )
        self.identities = identities = IdentityService(self.storage)
        key_id, secret = ACCESS_KEY, SECRET_KEY
        if as_user:
            key_id, secret = make_user(identities)
        self.authenticator = Authenticator(
            Keyring([AccessKey(ACCESS_KEY, SECRET_KEY)]),
            identities,
            account=self.service.account,
            region=REGION,
            store_may_block=False,
        )
        observe = RequestStats(self.service.operations).observe if metrics else None
        self.trail = (
            AuditTrail(
                open_audit_log(data_dir),
                region=self.service.region,
                account=self.service.account,
            )
            if audit
            else None
        )
        self.app = ApiApp(self.service, self.authenticator, observe=observe, audit=self.trail)
        self.scope, body = signed_scope(key_id, secret)
        self._message = {"type": "http.request", "body": body, "more_body": False}
        self.status = 0
        self.payload = b""

    async def _receive(self) -> dict:
        return self._message

    async def _send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.payload = message["body"]

    def request(self) -> None:
        coroutine = self.app(self.scope, self._receive, self._send)
        try:
            coroutine.send(None)
        except StopIteration:
            return
        coroutine.close()
        raise RuntimeError("the read path awaited something: it must answer on the loop thread")

    def check(self) -> None:
        self.request()
        if self.status != 200 or json.loads(self.payload)["SecretString"] != VALUE:
            raise SystemExit(f"unexpected answer {self.status}: {self.payload[:200]!r}")

    def close(self) -> None:
        self.app.writer.close()
        if self.trail is not None:
            self.trail.close()
        self.storage.close()


def make_user(identities: IdentityService) -> tuple[str, str]:
    """A user tagged team=b with ``USER_POLICIES``, one policy each: its key pair."""
    identities.create_user({"UserName": "bench", "Tags": [{"Key": "team", "Value": "b"}]})
    for index, statement in enumerate(USER_POLICIES):
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        identities.put_user_policy(
            {"UserName": "bench", "PolicyName": f"p{index}", "PolicyDocument": document}
        )
    key = identities.create_access_key({"UserName": "bench"})["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def signed_scope(key_id: str, secret: str) -> tuple[dict, bytes]:
    """An ASGI scope for one GetSecretValue as botocore signs it, and its body."""
    body = json.dumps({"SecretId": NAME})
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers={
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.12",
        },
    )
    SigV4Auth(Credentials(key_id, secret), "secretsmanager", REGION).add_auth(request)
    headers = [(b"host", HOST.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers += [(b"content-length", str(len(body)).encode()), (b"accept-encoding", b"identity")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
    }
    return scope, body.encode()


def loop(path: RequestPath, count: int) -> float:
    request = path.request
    started = time.perf_counter()
    for _ in range(count):
        request()
    return time.perf_counter() - started


def pieces(path: RequestPath) -> dict[str, Callable[[], object]]:
    """The whole request, then the steps of it that cost most, each callable alone."""
    body = path._message["body"]
    scope = path.scope
    secret, _ = path.service.load(NAME)
    version_id = secret.holder("AWSCURRENT").version_id
    result = path.service.call("GetSecretValue", {"SecretId": NAME})
    caller, _ = path.authenticator.authenticate("POST", "/", "", scope["headers"], body)
    extra: dict[str, Callable[[], object]] = {}
    if not caller.is_root:
        extra = {
            "  user's key and document (store)": lambda: path.identities.authenticate(
                caller.access_key_id
            ),
            "  authorization": lambda: path.service.authorization.check(
                "GetSecretValue", {"SecretId": NAME}, caller, NOWHERE
            ),
            "    policy evaluation": lambda: evaluate(
                RequestContext(
                    "secretsmanager:GetSecretValue",
                    secret.arn,
                    caller,
                    {"aws:ResourceTag/team": "b"},
                ),
                caller.policies,
                None,
            ),
        }
    if path.trail is not None:
        trail = path.trail
        call = ApiCall(
            "secretsmanager",
            "GetSecretValue",
            caller,
            request_context(scope, "r"),
            True,
            {"SecretId": NAME},
            result,
        )
        record = trail.call_record(call)
        extra.update(
            {
                "  audit: record rendered": lambda: trail.call_record(call),
                "  audit: record chained, written": lambda: trail.log.append((record,)),
            }
        )
    return {
        "whole request": path.request,
        "  authentication": lambda: path.authenticator.authenticate(
            "POST", "/", "", scope["headers"], body
        ),
        "  request JSON": lambda: decode_json(body),
        "  GetSecretValue (service)": lambda: path.service.call(
            "GetSecretValue", {"SecretId": NAME}
        ),
        "    store: document by name": lambda: path.storage.load_by_name(NAME),
        "    store: value, decrypted": lambda: path.storage.read_value(secret.arn, version_id),
        "  response JSON": lambda: encode(result),
        **extra,
    }


def instructions(
    count: int, metrics: bool, audit: bool = False, as_user: bool = False
) -> dict[str, float]:
    """Instructions per call of each of ``pieces``, counted by callgrind.

    Start-up (imports, the store, the first write of the day) runs uncounted: collection is
    on only inside ``functools.reduce``, the C function that drives each piece's loop in
    ``--counted`` mode, and callgrind writes one profile as each loop ends. The lambda the
    loop calls adds a few hundred instructions a call, a constant.
    """
    with tempfile.TemporaryDirectory() as scratch:
        out_file = Path(scratch) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce",
                f"--callgrind-out-file={out_file}",
                sys.executable,
                __file__,
                "--requests",
                str(count),
                "--counted",
                *(["--metrics"] if metrics else []),
                *(["--audit"] if audit else []),
                *(["--user"] if as_user else []),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
        names = json.loads(done.stdout.splitlines()[-1])
        dumps = sorted(
            Path(scratch).glob("callgrind.out.*"), key=lambda f: int(f.name.rsplit(".", 1)[1])
        )
        # The last dumps are the pieces' loops (an import may have called reduce before).
        totals = [
            int(re.search(r"^totals: (\d+)", dump.read_text(), re.M).group(1))
            for dump in dumps[-len(names) :]
        ]
    return {name: total / count for name, total in zip(names, totals, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--profile", action="store_true", help="cProfile the requests")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--metrics", action="store_true", help="as with --metrics")
    parser.add_argument("--audit", action="store_true", help="with the audit trail")
    parser.add_argument("--counted", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--user", action="store_true", help="sign as an IAM user, not root")
    args = parser.parse_args()
    if args.instructions:
        print("GetSecretValue in process, instructions per call:")
        for name, per_call in instructions(
            args.requests, args.metrics, args.audit, args.user
        ).items():
            print(f"{name:32s} {per_call:>10,.0f}")
        return
    # As the server runs: info level, so reads are not logged but the check for it is made.
    logs.configure("info")
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    with tempfile.TemporaryDirectory() as data_dir:
        path = RequestPath(Path(data_dir), args.metrics, audit=args.audit, as_user=args.user)
        try:
            path.check()
            loop(path, min(args.requests, 1000))  # warm: the first read of a day writes
            if args.counted:
                steps = pieces(path)
                for step in steps.values():
                    functools.reduce(lambda _, __, step=step: step(), range(args.requests), None)
                print(json.dumps(list(steps)))
                return
            if args.profile:
                profiler = cProfile.Profile()
                profiler.runcall(loop, path, args.requests)
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(30)
                return
            elapsed = loop(path, args.requests)
        finally:
            path.close()
    who = "a user" if args.user else "root"
    print(
        f"GetSecretValue in process, as {who}: {elapsed / args.requests * 1e6:.1f} us per request, "
        f"{args.requests / elapsed:,.0f} requests/s on one core "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()

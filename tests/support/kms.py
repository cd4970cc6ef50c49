"""A live AWS KMS stand-in for tests: moto's server in a subprocess on an ephemeral port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

RUNNING = re.compile(r"Running on (http://\S+)")
REGION = "us-east-1"


@contextmanager
def moto_kms(timeout: float = 30) -> Iterator[str]:
    """Run ``moto_server`` until the block exits; yields its URL."""
    program = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(program), "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found = threading.Event()
    url: list[str] = []
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = RUNNING.search(line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not found.wait(timeout) or not url:
            raise RuntimeError("moto_server did not start:\n" + "".join(output))
        yield url[0]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()


def kms_env(url: str) -> dict[str, str]:
    """Variables that point boto3's KMS client at ``url`` with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL_KMS": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def create_kms_key(url: str) -> str:
    """A new symmetric KMS key; its ARN."""
    client = boto3.client(
        "kms",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client.create_key(Description="secretsd test")["KeyMetadata"]["Arn"]

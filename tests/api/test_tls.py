"""HTTPS: a server with a certificate, boto3 and the agent trusting it by a CA file, and no
plain HTTP beyond loopback unless asked for by name."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import SSLError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from secretsd.api.app import request_context
from tests.agent.support import start_agent, write_config
from tests.support.server import start_server


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that is its own CA, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretsd test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(directory)
    server = start_server(directory / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    yield server, cert
    server.stop()


def client(server, **kwargs):
    return server.session().client("secretsmanager", endpoint_url=server.endpoint_url, **kwargs)


def test_the_server_serves_https_to_a_client_that_trusts_its_ca(tls_server):
    server, cert = tls_server
    assert server.endpoint_url.startswith("https://127.0.0.1:")
    sm = client(server, verify=str(cert))
    name = f"tls/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="over tls")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "over tls"


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_server):
    server, _ = tls_server
    with pytest.raises(SSLError):
        client(server).list_secrets()


def test_the_agent_reaches_an_https_server_through_its_ca_bundle(tls_server, tmp_path):
    server, cert = tls_server
    name = f"tls/{uuid.uuid4().hex[:8]}"
    client(server, verify=str(cert)).create_secret(Name=name, SecretString="via agent")
    config = write_config(
        tmp_path, f'endpoint_url = "{server.endpoint_url}"\nca_bundle = "{cert}"\n'
    )
    agent = start_agent(config, server.env)
    try:
        status, body = agent.get(f"/secretsmanager/get?secretId={name}")
        assert status == 200 and b"via agent" in body
    finally:
        agent.stop()


def test_plain_http_beyond_loopback_is_refused_unless_asked_for(tmp_path):
    command = [sys.executable, "-m", "secretsd.cli", "server", "--port", "0", "--host", "0.0.0.0"]
    refused = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "a")], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert "refusing to listen on 0.0.0.0 without TLS" in line and "--insecure-http" in line
    assert not (tmp_path / "a").exists()  # refused before anything was made
    server = start_server(tmp_path / "b", "--host", "0.0.0.0", "--insecure-http")
    try:
        assert server.endpoint_url.startswith("http://0.0.0.0:")
    finally:
        server.stop()


def test_tls_files_that_do_not_load_stop_the_start(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "secretsd.cli",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
            "--tls-cert",
            str(bad),
            "--tls-key",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "cannot load --tls-cert/--tls-key" in result.stderr


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_secure_transport_follows_the_connection(scheme, secure):
    scope = {
        "scheme": scheme,
        "client": ("192.0.2.1", 5000),
        "headers": [(b"user-agent", b"agent/1")],
    }
    context = request_context(scope, "r1")
    assert context.secure_transport is secure
    assert context.source_ip == "192.0.2.1" and context.user_agent == "agent/1"

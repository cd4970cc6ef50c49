"""The server's access keys, kept in ``DATA_DIR/credentials``.

The file is in the AWS shared-credentials format, so the AWS CLI and every SDK can use it as it
is (``AWS_SHARED_CREDENTIALS_FILE=<path> AWS_PROFILE=secretsd``). The first start writes one key
under the ``[secretsd]`` profile; every profile in the file that holds a key pair is accepted, so
adding a profile by hand adds a key.

The file is written to a private temporary file and linked into place, so a reader never sees
half a file and two servers starting on one data directory agree on the key that won.
"""

from __future__ import annotations

import configparser
import logging
import secrets
import shlex
import stat
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from secretsd.private_file import publish_private_file

PROFILE = "secretsd"
FILE_NAME = "credentials"
DEFAULT_REGION = "us-east-1"

_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

log = logging.getLogger(__name__)


class CredentialsError(Exception):
    """The credentials file cannot be used; the message names the file, never a secret."""


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    profile: str = PROFILE


def generate_key(profile: str = PROFILE) -> AccessKey:
    """A fresh key pair shaped like AWS's, so tools that check the shape accept it."""
    access_key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return AccessKey(access_key_id, secret, profile)


class Keyring:
    """The accepted access keys; ``lookup`` is what the SigV4 verifier asks."""

    def __init__(self, keys: Iterable[AccessKey], path: Path | None = None) -> None:
        self.keys = tuple(keys)
        self.path = path
        if not self.keys:
            raise CredentialsError(f"{path or 'keyring'}: no access keys")
        self._secrets: dict[str, str] = {}
        for key in self.keys:
            known = self._secrets.get(key.access_key_id)
            if known is not None and known != key.secret_access_key:
                raise CredentialsError(
                    f"{path or 'keyring'}: access key {key.access_key_id} appears twice "
                    "with different secrets"
                )
            self._secrets[key.access_key_id] = key.secret_access_key

    def lookup(self, access_key_id: str) -> str | None:
        return self._secrets.get(access_key_id)

    @property
    def primary(self) -> AccessKey:
        """The ``[secretsd]`` profile's key, or the first key when that profile is absent."""
        for key in self.keys:
            if key.profile == PROFILE:
                return key
        return self.keys[0]

    def __repr__(self) -> str:
        ids = ", ".join(key.access_key_id for key in self.keys)
        return f"Keyring([{ids}])"


def credentials_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def load_or_create(data_dir: Path) -> tuple[Keyring, bool]:
    """Load the keyring of ``data_dir``, writing a new key first if there is no file.

    Returns the keyring and whether this call created the file.
    """
    path = credentials_path(data_dir)
    created = False
    if not path.exists():
        created = _create(path, generate_key())
    return load(path), created


def load(path: Path) -> Keyring:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        text = path.read_text(encoding="utf-8")
        parser.read_string(text, source=str(path))
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        # The parser's own message may quote a line, and a line may hold a secret.
        raise CredentialsError(
            f"{path} is not an AWS credentials file ({type(exc).__name__})"
        ) from None
    keys = []
    for profile in parser.sections():
        section = parser[profile]
        access_key_id = section.get("aws_access_key_id", "").strip()
        secret = section.get("aws_secret_access_key", "").strip()
        if access_key_id and secret:
            keys.append(AccessKey(access_key_id, secret, profile))
    if not keys:
        raise CredentialsError(
            f"{path} holds no profile with aws_access_key_id and aws_secret_access_key"
        )
    _warn_if_readable_by_others(path)
    return Keyring(keys, path)


def render(key: AccessKey) -> str:
    return (
        f"[{key.profile}]\n"
        f"aws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )


def client_setup(
    key: AccessKey, endpoint_url: str, credentials_file: Path, region: str = DEFAULT_REGION
) -> str:
    """The printout telling a user how to point AWS tools at this server.

    This is the one deliberate place where the secret access key is shown.
    """
    q = shlex.quote
    return "\n".join(
        (
            "# Point the AWS CLI and SDKs at this server with environment variables:",
            f"export AWS_ACCESS_KEY_ID={q(key.access_key_id)}",
            f"export AWS_SECRET_ACCESS_KEY={q(key.secret_access_key)}",
            f"export AWS_DEFAULT_REGION={q(region)}",
            f"export AWS_ENDPOINT_URL_SECRETS_MANAGER={q(endpoint_url)}",
            "# or with the profile in the credentials file:",
            f"export AWS_SHARED_CREDENTIALS_FILE={q(str(credentials_file))} "
            f"AWS_PROFILE={q(key.profile)} AWS_DEFAULT_REGION={q(region)} "
            f"AWS_ENDPOINT_URL_SECRETS_MANAGER={q(endpoint_url)}",
            "",
        )
    )


def _create(path: Path, key: AccessKey) -> bool:
    # False when another process wrote it first: its key is the one.
    return publish_private_file(path, render(key).encode())


def _warn_if_readable_by_others(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is accessible to other users (mode %o); chmod 600 it", path, mode & 0o777)

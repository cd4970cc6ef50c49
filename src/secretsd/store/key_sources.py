"""Where the master key comes from: a file beside the data, the environment, a command, KMS.

Theory of operation. The server names at most one source; ``choose_source`` validates that
choice once, before anything is opened, and every message an operator may see is built
here. A source's ``load(create=...)`` returns the key; ``create`` is true only for the
first start of an empty store (then the file and KMS sources make a new key). Errors name
the source (a path, a program, a KMS key) and never any bytes of key material or of a
command's output.

- file (default): ``DATA_DIR/master.key``, base64, mode 0600.
- environment: ``SECRETSD_MASTER_KEY``, base64; for nodes sharing a PostgreSQL store.
- command (``--master-key-command``): run without a shell; its stdout is the base64 key.
  Its stderr is not captured: it reaches the server's stderr, for the tool's diagnostics.
- KMS (``--master-key-kms``): a data key made by KMS GenerateDataKey on the first start;
  only its ciphertext is kept, in ``DATA_DIR/master.key.kms``, and KMS Decrypt unwraps it at
  each start. boto3 finds region, credentials and endpoint the usual way
  (``AWS_REGION``, ``AWS_ENDPOINT_URL_KMS``, profiles).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from secretsd.private_file import publish_private_file
from secretsd.store.keys import (
    ENV_VAR,
    KEY_BYTES,
    KEY_FILE_NAME,
    MasterKey,
    MasterKeyError,
    decode_material,
    load_master_key,
    read_key_material,
)

COMMAND_ENV_VAR = "SECRETSD_MASTER_KEY_COMMAND"
KMS_ENV_VAR = "SECRETSD_MASTER_KEY_KMS"
KMS_BLOB_FILE_NAME = "master.key.kms"
COMMAND_TIMEOUT_S = 30.0
# A base64 key is 44 characters; anything much longer is not a key.
_MAX_COMMAND_OUTPUT = 4096
# Binds the wrapped key to its purpose: KMS refuses to unwrap it for any other context.
KMS_ENCRYPTION_CONTEXT = {"secretsd": "master-key"}

MSG_BOTH_SOURCES = (
    "choose one master key source: --master-key-command (or {command_env}) and "
    "--master-key-kms (or {kms_env}) exclude each other"
)
MSG_ENV_AND_SOURCE = "{env} is set, and so is {flag}: unset one of them"
MSG_EMPTY_COMMAND = "the master key command is empty"
MSG_BAD_COMMAND = "the master key command cannot be parsed: {reason}"
MSG_COMMAND_NOT_FOUND = "the master key command {program} cannot be run: {reason}"
MSG_COMMAND_TIMEOUT = "the master key command {program} did not finish within {seconds:g} seconds"
MSG_COMMAND_STATUS = "the master key command {program} failed with exit status {status}"
MSG_COMMAND_SIGNAL = "the master key command {program} was killed by signal {signal}"
MSG_COMMAND_EMPTY_OUTPUT = (
    "the master key command {program} printed nothing: it must print the master key "
    "(base64 of 32 bytes) on its standard output"
)
MSG_COMMAND_OUTPUT = "the output of the master key command {program}"
MSG_KMS_ARN = "--master-key-kms must be a KMS key ARN (arn:aws:kms:...), key id or alias"
MSG_KMS_BLOB_MISSING = (
    "{path} is missing, but the store already holds data sealed with a master key: "
    "restore the file (it holds the key wrapped by KMS key {key})"
)
MSG_KMS_WRONG_KEY = (
    "{path} was wrapped by another KMS key than {key}: pass the KMS key that made it"
)
MSG_KMS_MAYBE_OTHER_KEY = " (if {path} was wrapped by another KMS key, pass that key)"
MSG_KMS_FAILED = "AWS KMS refused to {action} with key {key}: {code}: {message}"
MSG_KMS_UNREACHABLE = "cannot reach AWS KMS to {action} with key {key}: {reason}"
MSG_KMS_BAD_KEY = "AWS KMS returned a data key of the wrong length for {path}"


class KeySource(Protocol):
    @property
    def description(self) -> str: ...

    def load(self, *, create: bool) -> MasterKey: ...

    def material(self) -> bytes:
        """The existing key's bytes, for wrapping it under another key in a rotation."""
        ...


@dataclass(frozen=True)
class FileOrEnvSource:
    """``SECRETSD_MASTER_KEY`` when set, else ``data_dir/master.key``."""

    data_dir: Path
    env: Mapping[str, str]

    @property
    def description(self) -> str:
        if ENV_VAR in self.env:
            return f"the environment variable {ENV_VAR}"
        return str(self.data_dir / KEY_FILE_NAME)

    @property
    def key_file(self) -> Path | None:
        return None if ENV_VAR in self.env else self.data_dir / KEY_FILE_NAME

    def load(self, *, create: bool) -> MasterKey:
        return load_master_key(self.data_dir, self.env, create=create)

    def material(self) -> bytes:
        if ENV_VAR in self.env:
            return decode_material(self.env[ENV_VAR], self.description)
        try:
            return read_key_material(self.data_dir / KEY_FILE_NAME)
        except OSError as exc:
            raise MasterKeyError(f"cannot read {self.description}: {exc.strerror}") from None


@dataclass(frozen=True)
class CommandSource:
    """The key is what ``argv`` prints; the command never sees a shell."""

    argv: tuple[str, ...]
    timeout: float = COMMAND_TIMEOUT_S

    @property
    def description(self) -> str:
        return f"the master key command {self.argv[0]}"

    def load(self, *, create: bool) -> MasterKey:
        return MasterKey(self.material())

    def material(self) -> bytes:
        return decode_material(self.run(), MSG_COMMAND_OUTPUT.format(program=self.argv[0]))

    def run(self) -> bytes:
        program = self.argv[0]
        try:
            # A session of its own, so a timeout kills the helpers it started too; they
            # would otherwise hold the pipe open and the read would never end.
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise MasterKeyError(
                MSG_COMMAND_NOT_FOUND.format(program=program, reason=exc.strerror)
            ) from None
        try:
            output, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise MasterKeyError(
                MSG_COMMAND_TIMEOUT.format(program=program, seconds=self.timeout)
            ) from None
        if process.returncode < 0:
            name = signal.Signals(-process.returncode).name
            raise MasterKeyError(MSG_COMMAND_SIGNAL.format(program=program, signal=name))
        if process.returncode != 0:
            raise MasterKeyError(
                MSG_COMMAND_STATUS.format(program=program, status=process.returncode)
            )
        if not output.strip():
            raise MasterKeyError(MSG_COMMAND_EMPTY_OUTPUT.format(program=program))
        if len(output) > _MAX_COMMAND_OUTPUT:
            output = b"!"  # malformed, without keeping the text around
        return output


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


@dataclass(frozen=True)
class KmsSource:
    """A KMS data key, kept wrapped in ``data_dir/master.key.kms``."""

    key: str
    data_dir: Path

    @property
    def description(self) -> str:
        return f"the KMS-wrapped key {self.blob_path} (KMS key {self.key})"

    @property
    def blob_path(self) -> Path:
        return self.data_dir / KMS_BLOB_FILE_NAME

    def material(self) -> bytes:
        try:
            blob = self.blob_path.read_bytes()
        except OSError as exc:
            raise MasterKeyError(f"cannot read {self.blob_path}: {exc.strerror}") from None
        return self._unwrap(blob)

    def load(self, *, create: bool) -> MasterKey:
        path = self.blob_path
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise MasterKeyError(MSG_KMS_BLOB_MISSING.format(path=path, key=self.key)) from None
            return self._create(path)
        except OSError as exc:
            raise MasterKeyError(f"cannot read {path}: {exc.strerror}") from None
        return MasterKey(self._unwrap(blob))

    def _unwrap(self, blob: bytes) -> bytes:
        response = self._call(
            "unwrap " + str(self.blob_path),
            "Decrypt",
            CiphertextBlob=blob,
            KeyId=self.key,
            EncryptionContext=KMS_ENCRYPTION_CONTEXT,
        )
        return self._checked(response["Plaintext"])

    def _create(self, path: Path) -> MasterKey:
        response = self._call(
            "generate a data key",
            "GenerateDataKey",
            KeyId=self.key,
            KeySpec="AES_256",
            EncryptionContext=KMS_ENCRYPTION_CONTEXT,
        )
        key = MasterKey(self._checked(response["Plaintext"]))
        if not publish_private_file(path, response["CiphertextBlob"]):
            # Another process made the first start at the same time: use its key.
            return self.load(create=False)
        return key

    def _checked(self, plaintext: bytes) -> bytes:
        if len(plaintext) != KEY_BYTES:
            raise MasterKeyError(MSG_KMS_BAD_KEY.format(path=self.blob_path))
        return plaintext

    def _call(self, action: str, operation: str, **params) -> dict:
        import boto3
        import botocore.exceptions

        try:
            client = boto3.client("kms")
            if operation == "Decrypt":
                return client.decrypt(**params)
            return client.generate_data_key(**params)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Error")
            if operation == "Decrypt" and code == "IncorrectKeyException":
                raise MasterKeyError(
                    MSG_KMS_WRONG_KEY.format(path=self.blob_path, key=self.key)
                ) from None
            message = MSG_KMS_FAILED.format(
                action=action, key=self.key, code=code, message=error.get("Message", "")
            )
            if operation == "Decrypt" and code == "AccessDeniedException":
                # What some KMS implementations answer for a blob of another key.
                message += MSG_KMS_MAYBE_OTHER_KEY.format(path=self.blob_path)
            raise MasterKeyError(message) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise MasterKeyError(
                MSG_KMS_UNREACHABLE.format(action=action, key=self.key, reason=exc)
            ) from None


def choose_source(
    data_dir: Path,
    env: Mapping[str, str],
    *,
    command: str | None = None,
    kms_key: str | None = None,
) -> KeySource:
    """The one master key source the flags (else the environment) name, validated.

    ``command`` and ``kms_key`` are the values of ``--master-key-command`` and
    ``--master-key-kms``; None falls back to ``SECRETSD_MASTER_KEY_COMMAND`` and
    ``SECRETSD_MASTER_KEY_KMS``. Raises MasterKeyError with the message to show.
    """
    if command is None:
        command = env.get(COMMAND_ENV_VAR) or None
    if kms_key is None:
        kms_key = env.get(KMS_ENV_VAR) or None
    if command is not None and kms_key is not None:
        raise MasterKeyError(
            MSG_BOTH_SOURCES.format(command_env=COMMAND_ENV_VAR, kms_env=KMS_ENV_VAR)
        )
    chosen = "--master-key-command" if command is not None else "--master-key-kms"
    if (command is not None or kms_key is not None) and ENV_VAR in env:
        raise MasterKeyError(MSG_ENV_AND_SOURCE.format(env=ENV_VAR, flag=chosen))
    if command is not None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise MasterKeyError(MSG_BAD_COMMAND.format(reason=exc)) from None
        if not argv:
            raise MasterKeyError(MSG_EMPTY_COMMAND)
        return CommandSource(tuple(argv))
    if kms_key is not None:
        kms_key = kms_key.strip()
        if not kms_key or any(c.isspace() for c in kms_key):
            raise MasterKeyError(MSG_KMS_ARN)
        return KmsSource(kms_key, Path(data_dir))
    return FileOrEnvSource(Path(data_dir), env)

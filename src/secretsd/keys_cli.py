"""``secretsd keys``: move a store to a new master key while its servers keep running.

``rotate-master`` re-seals every value under a new key (``store.rekey`` says how servers
keep working meanwhile). The old key comes from the store's usual source (the same flags
as the server). The new key is printed by ``--new-key-command`` or, when the old key is the
key file, made by the command itself as ``DATA_DIR/master.key.next``; at the end
``master.key`` becomes ``master.key.old`` and ``master.key.next`` becomes ``master.key``.
Killed at any point, running it again with the same flags resumes.

``retire-old-key``, once every server runs with the new key, removes what still lets the
old key reach the new one: the rotation record in the store and ``master.key.old``.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

from secretsd.arguments import add_store_arguments
from secretsd.model.errors import DecryptionFailure
from secretsd.private_file import fsync_dir, publish_private_file
from secretsd.store import StorageError, open_storage, rekey
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.key_sources import FileOrEnvSource, KeySource, choose_source
from secretsd.store.keys import (
    KEY_BYTES,
    Keyring,
    MasterKey,
    MasterKeyError,
    read_key_material,
)

NEXT_KEY_FILE_NAME = "master.key.next"
OLD_KEY_FILE_NAME = "master.key.old"
PROGRESS_EVERY = 100


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretsd keys", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rotate = sub.add_parser("rotate-master", help="re-seal every value under a new master key")
    rotate.add_argument(
        "--new-key-command",
        default=None,
        help="command printing the new base64 master key (needed unless the current key "
        "is DATA_DIR/master.key, in which case a new key file is made)",
    )
    retire = sub.add_parser(
        "retire-old-key", help="after a rotation: the old key no longer opens anything"
    )
    for command in (rotate, retire):
        add_store_arguments(command)
    return parser


def _open(args: argparse.Namespace) -> tuple[EncryptedStorage, KeySource]:
    source = choose_source(
        args.data_dir,
        os.environ,
        command=args.master_key_command,
        kms_key=args.master_key_kms,
    )
    storage = open_storage(
        args.data_dir,
        args.database_url,
        schema=args.database_schema,
        master_key_command=args.master_key_command,
        master_key_kms=args.master_key_kms,
    )
    assert isinstance(storage, EncryptedStorage)
    return storage, source


def _key_file_source(source: KeySource) -> Path | None:
    return source.key_file if isinstance(source, FileOrEnvSource) else None


def _new_material(args: argparse.Namespace, source: KeySource) -> bytes:
    if args.new_key_command is not None:
        return choose_source(args.data_dir, {}, command=args.new_key_command).material()
    key_file = _key_file_source(source)
    if key_file is None:
        raise MasterKeyError(
            f"the master key comes from {source.description}: give the new key with "
            f"--new-key-command"
        )
    path = key_file.with_name(NEXT_KEY_FILE_NAME)
    # Made once and reused on a rerun: a resumed rotation must aim at the same key.
    publish_private_file(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
    try:
        return read_key_material(path)
    except OSError as exc:
        raise MasterKeyError(f"cannot read {path}: {exc.strerror}") from None


def rotate_master(args: argparse.Namespace) -> int:
    storage, source = _open(args)
    try:
        old = source.material()
        new = _new_material(args, source)
        old_key, new_key = MasterKey(old), MasterKey(new)
        if old_key.key_id == new_key.key_id:
            raise MasterKeyError("the new master key is the current one: nothing to rotate")
        rekey.begin(storage, old, new)
        # Every key the store may name: the old, the new, and any learned from the store.
        ring = Keyring(new_key, [old_key, *storage.keyring.keys()])
        total = 0

        def progress(done: int) -> None:
            if (total + done) % PROGRESS_EVERY == 0:
                print(f"re-sealed {total + done} values", flush=True)

        while True:
            met = rekey.rewrap_pass(storage, ring, progress)
            if met == 0:
                break
            total += met
        while rekey.reauthenticate_pass(storage):
            pass
        while rekey.reseal_users_pass(storage):
            pass
        rekey.finish(storage, ring)
    finally:
        storage.close()
    key_file = _key_file_source(source)
    if key_file is not None and args.new_key_command is None:
        _swap_key_files(key_file)
        where = f"{key_file} (the old key is kept in {key_file.with_name(OLD_KEY_FILE_NAME)})"
    else:
        where = "the key printed by --new-key-command: start servers with it from now on"
    print(
        f"master key rotated to key {new_key.key_id}: every value is sealed under it.\n"
        f"The new key is {where}.\n"
        f"Servers still running with the old key learn the new one from the store.\n"
        f"Once every server runs with the new key, run `secretsd keys retire-old-key`.",
        flush=True,
    )
    return 0


def _swap_key_files(key_file: Path) -> None:
    """master.key -> master.key.old, master.key.next -> master.key; master.key never absent."""
    following = key_file.with_name(NEXT_KEY_FILE_NAME)
    if not following.exists():
        return  # swapped by an earlier run that was killed before its last message
    old = key_file.with_name(OLD_KEY_FILE_NAME)
    spare = key_file.with_name(f".{OLD_KEY_FILE_NAME}.{os.getpid()}.tmp")
    os.link(key_file, spare)
    os.replace(spare, old)
    os.replace(following, key_file)
    fsync_dir(key_file.parent)


def retire_old_key(args: argparse.Namespace) -> int:
    storage, source = _open(args)
    try:
        current = MasterKey(source.material())
        if rekey.check_key_id(storage) != current.key_id:
            raise MasterKeyError(
                f"this store's master key is not the one from {source.description}: "
                f"start with the new key (the one `rotate-master` moved to) before retiring"
            )
        if rekey.count_under_other_keys(storage, current.key_id) != 0:
            raise MasterKeyError("records remain under the old key: run rotate-master again")
        rekey.retire(storage)
    finally:
        storage.close()
    key_file = _key_file_source(source)
    if key_file is not None:
        key_file.with_name(OLD_KEY_FILE_NAME).unlink(missing_ok=True)
    print("the old master key is retired: it opens nothing in this store any more", flush=True)
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    run = rotate_master if args.command == "rotate-master" else retire_old_key
    try:
        return run(args)
    except (StorageError, OSError) as exc:
        print(f"secretsd keys: {exc}", file=sys.stderr)
        return 1
    except DecryptionFailure as exc:
        print(f"secretsd keys: {exc.message}", file=sys.stderr)
        return 1

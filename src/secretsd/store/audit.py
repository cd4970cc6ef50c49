"""Where audit records are kept: an append-only chain behind one small interface.

Theory of operation. The service shapes records (``service/audit.py``); a log here seals
each one to the record before it (``model/audit_chain``) and appends it, in one place that
serialises appends so the chain stays linear. Two implementations pass one conformance
suite (tests/store/test_audit_logs.py):

- ``FileAuditLog``: ``DATA_DIR/audit.log``, one canonical JSON record a line, rolled by size
  to ``audit.log.000001``, ``audit.log.000002``, ... with the chain running on across files.
  One process writes it (an exclusive lock on ``audit.log.lock``). A group of records is one
  ``write`` to a file opened with O_APPEND: the records reach the operating system before
  the call returns, not the disk (no fsync per request, like Vault's file device). A write
  that fails is cut back to the last whole record, and the next append tries again.
- ``PostgresAuditLog`` (``store/audit_postgres.py``): a table every node appends to, the
  chain head a row locked for the length of each append, so nodes take turns.

``append`` raises ``AuditWriteError`` when the records could not be stored; none of them
then counts as written.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from secretsd.model.audit_chain import EMPTY, Head, Line, head_of, seal
from secretsd.store.base import StorageError

AUDIT_FILE_NAME = "audit.log"
DEFAULT_MAX_BYTES = 64 << 20
_ROLLED = re.compile(r"\.(\d{6,})")


class AuditWriteError(StorageError):
    """The audit records could not be stored (disk full, permissions, database down)."""


class AuditLog(abc.ABC):
    #: Whether an append can wait on something outside this process (the network, another
    #: node's turn at the chain): an event loop must not append to such a log itself.
    appends_may_block: bool = False

    @abc.abstractmethod
    def append(self, records: Sequence[str]) -> None:
        """Seal ``records`` (each the canonical JSON of one record, ``model.audit_chain``)
        onto the chain, in order, and store them all or none."""

    @abc.abstractmethod
    def lines(self, after: int = 0) -> Iterator[Line]:
        """The stored lines in chain order (those of records with a sequence above ``after``
        where the log can skip cheaply; readers still check)."""

    async def append_async(self, records: Sequence[str]) -> None:
        """``append`` for an event loop (a log whose appends may block overrides it)."""
        self.append(records)

    def close(self) -> None:  # noqa: B027 - most logs hold nothing to close
        pass


def rolled_files(directory: Path, name: str = AUDIT_FILE_NAME) -> list[Path]:
    """The audit files of ``directory`` in chain order: rolled ones by number, then the
    current one."""
    numbered = []
    for path in directory.glob(name + ".*"):
        match = _ROLLED.fullmatch(path.name[len(name) :])
        if match:
            numbered.append((int(match.group(1)), path))
    files = [path for _, path in sorted(numbered)]
    current = directory / name
    if current.exists():
        files.append(current)
    return files


def read_file_lines(directory: Path, name: str = AUDIT_FILE_NAME) -> Iterator[Line]:
    for path in rolled_files(directory, name):
        with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
            for number, text in enumerate(handle, 1):
                yield Line(f"{path.name}:{number}", text.rstrip("\n"))


class FileAuditLog(AuditLog):
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        name: str = AUDIT_FILE_NAME,
    ) -> None:
        if max_bytes < 1024:
            raise StorageError(f"the audit file size limit must be at least 1024, not {max_bytes}")
        self.directory = Path(directory)
        self.name = name
        self.max_bytes = max_bytes
        self._mutex = threading.Lock()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = self._take_writer_lock()
        self._fd = -1
        try:
            self._open()
        except BaseException:
            os.close(self._lock_fd)
            raise

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def _take_writer_lock(self) -> int:
        lock_path = self.directory / (self.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError(
                f"another process writes the audit log in {self.directory} "
                "(one server per data directory)"
            ) from None
        return fd

    def _open(self) -> None:
        """Open the current file and find the chain's head in it, or in the last rolled
        file when it is empty."""
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = self._drop_incomplete_tail()
        except OSError as exc:
            self._close_fd()
            raise AuditWriteError(
                f"cannot open the audit log {self.path}: {exc.strerror}"
            ) from None
        self._head = EMPTY
        for path in reversed(rolled_files(self.directory, self.name)):
            last = _last_line(path)
            if last is not None:
                try:
                    self._head = head_of(last)
                except (ValueError, KeyError, TypeError):
                    self._close_fd()
                    raise AuditWriteError(
                        f"the last record of {path} is unreadable, so the chain cannot go on "
                        "from it: run `secretsd audit verify`"
                    ) from None
                break

    def _drop_incomplete_tail(self) -> int:
        """Cut a record left half-written by a crash: its request was never answered."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        with self.path.open("rb") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return size
            keep = _end_of_last_whole_line(handle, size)
        os.ftruncate(self._fd, keep)
        return keep

    def _close_fd(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def append(self, records: Sequence[str]) -> None:
        with self._mutex:
            if self._fd < 0:
                self._open()
            head = self._head
            if len(records) == 1:
                data, head = seal(records[0], head)
            else:
                lines = []
                for record in records:
                    line, head = seal(record, head)
                    lines.append(line)
                data = b"".join(lines)
            try:
                _write_all(self._fd, data)
            except OSError as exc:
                self._recover(exc)
                raise AuditWriteError(
                    f"cannot write the audit log {self.path}: {exc.strerror}"
                ) from None
            self._head = head
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._roll()

    def _recover(self, exc: OSError) -> None:
        # Part of the group may be on disk: cut it, so the next append follows a whole record.
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # Reopening finds the last whole record again.
            self._close_fd()

    def _roll(self) -> None:
        numbers = [0]
        for path in rolled_files(self.directory, self.name)[:-1]:
            numbers.append(int(path.name[len(self.name) + 1 :]))
        target = self.directory / f"{self.name}.{max(numbers) + 1:06d}"
        try:
            os.rename(self.path, target)
        except OSError:
            # The current file simply grows; the next append tries again.
            return
        self._close_fd()
        with contextlib.suppress(AuditWriteError):
            # Failing here is noticed by the next append, which reopens.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = 0

    def lines(self, after: int = 0) -> Iterator[Line]:
        return read_file_lines(self.directory, self.name)

    @property
    def head(self) -> Head:
        return self._head

    def close(self) -> None:
        with self._mutex:
            self._close_fd()
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # rare: a signal, or a disk filling up
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _last_line(path: Path) -> str | None:
    """The last whole line of ``path`` (reading backwards in blocks), or None if empty."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            end = size
            tail = b""
            while end > 0:
                start = max(0, end - 65536)
                handle.seek(start)
                tail = handle.read(end - start) + tail
                end = start
                stripped = tail.rstrip(b"\n")
                cut = stripped.rfind(b"\n")
                if cut >= 0 or end == 0:
                    text = stripped[cut + 1 :].decode()
                    return text or None
    except OSError as exc:
        raise AuditWriteError(f"cannot read the audit log {path}: {exc.strerror}") from None
    return None


def _end_of_last_whole_line(handle: Any, size: int) -> int:
    end = size
    while end > 0:
        start = max(0, end - 65536)
        handle.seek(start)
        block = handle.read(end - start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


class FileFollower:
    """New lines of the current audit file as they are appended, across rolls, like
    ``tail -F``: the open file is read to its end before a new current file is opened."""

    def __init__(self, directory: Path, name: str = AUDIT_FILE_NAME) -> None:
        self.path = Path(directory) / name
        self._handle: Any = None
        self._partial = b""

    def _reopen(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        with contextlib.suppress(FileNotFoundError):
            self._handle = self.path.open("rb")

    def start_at_end(self) -> None:
        self._reopen()
        if self._handle is not None:
            self._handle.seek(0, os.SEEK_END)

    def poll(self) -> list[str]:
        """Whole lines appended since the last poll."""
        if self._handle is None:
            self._reopen()
            if self._handle is None:
                return []
        found = self._read()
        try:
            rolled = os.stat(self.path).st_ino != os.fstat(self._handle.fileno()).st_ino
        except FileNotFoundError:
            rolled = True
        if rolled:
            found += self._read()
            self._reopen()
            if self._handle is not None:
                found += self._read()
        return found

    def _read(self) -> list[str]:
        data = self._partial + self._handle.read()
        *whole, self._partial = data.split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in whole]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

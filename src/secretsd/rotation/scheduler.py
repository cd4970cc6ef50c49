"""Finds rotations to run and runs them, one at a time per secret, never blocking others.

Theory of operation. ``plan`` is pure: given a secret, the time and what this process knows
of recent failures, it says whether to start a new rotation, resume the one in progress
(same token), or do nothing. The ``Scheduler`` thread calls it each tick for the secrets the
store's index names as possibly needing action (``rotation_dates.rotation_attention``, a
superset of those ``plan`` acts on) and hands work to a small pool; a secret already
rotating in this process is skipped, so there is at most one rotation per secret at a time.
A failed attempt is retried with exponential backoff while its window is open
(``rotation_retry_until``), then left for the next window of the schedule, when it resumes
with the same token. Because the rotation in progress is in the store, a restarted server
picks it up where the old one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from secretsd.model import errors, rotation
from secretsd.model.rotation_dates import refresh_next_rotation, retry_deadline
from secretsd.model.schedule import parse_rotation_rules
from secretsd.model.secret import Secret
from secretsd.service import SecretsService

from .orchestrator import Rotator

log = logging.getLogger("secretsd.scheduler")


@dataclass(frozen=True)
class Backoff:
    failures: int = 0
    not_before: float = 0.0


@dataclass(frozen=True)
class Action:
    kind: str  # "start" | "resume"
    token: str | None = None


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def plan(secret: Secret, now: float, backoff: Backoff) -> Action | None:
    """What to do about ``secret`` at ``now``; pure."""
    if not secret.rotation_enabled or secret.scheduled_for_deletion:
        return None
    if now < backoff.not_before:
        return None
    token = secret.rotation_token or rotation.pending_rotation(secret)
    retrying = secret.rotation_retry_until is not None and now < secret.rotation_retry_until
    if token is not None and retrying:
        return Action("resume", token)
    if not secret.rotation_rules:
        return None
    rules = parse_rotation_rules(secret.rotation_rules)
    base = secret.rotation_base if secret.rotation_base is not None else secret.created
    if token is not None:
        # Left over from an earlier window: the next open window takes it up again.
        last_try_end = secret.rotation_retry_until or base
        window = rules.window_at(_dt(now), _dt(base))
        if window is not None and window.start.timestamp() >= last_try_end:
            return Action("resume", token)
        return None
    if rules.is_due(_dt(base), _dt(now)):
        return Action("start")
    return None


def backoff_after(failures: int, now: float, base: float, ceiling: float) -> Backoff:
    return Backoff(failures, now + min(ceiling, base * 2 ** (failures - 1)))


class Scheduler:
    def __init__(
        self,
        service: SecretsService,
        rotator: Rotator,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 1.0,
        retry_base: float = 2.0,
        retry_ceiling: float = 600.0,
        workers: int = 4,
    ) -> None:
        self.service = service
        self.rotator = rotator
        self.requests = service.rotation_requests
        self.clock = clock
        self.interval = interval
        self.retry_base = retry_base
        self.retry_ceiling = retry_ceiling
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="secretsd-rotation")
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._backoff: dict[str, Backoff] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="secretsd-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.requests.wake.set()
        self._thread.join(timeout=5)
        # A rotation cut short here resumes after restart with the same token.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _take_requests(self) -> None:
        """Act on what RotateSecret asked for since the last look."""
        requested = self.requests.take()
        with self._lock:
            for arn in requested.rotate:
                # A rotation asked for now forgets the backoff of earlier failures.
                self._backoff.pop(arn, None)
        for arn in requested.test:
            self._test(arn)

    def _test(self, arn: str) -> None:
        """RotateSecret with RotateImmediately=false: run testSecret once, in the background."""
        with self._lock:
            if arn in self._running:
                return
            self._running.add(arn)

        def run() -> None:
            try:
                self.rotator.test_configuration(arn)
            except Exception:
                log.exception("rotation test failed", extra={"secret": arn})
            finally:
                with self._lock:
                    self._running.discard(arn)

        self._pool.submit(run)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._take_requests()
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            self.requests.wake.wait(self.interval)

    def tick(self) -> None:
        now = self.clock()
        for secret in self.service.rotation_candidates(now):
            with self._lock:
                if secret.arn in self._running:
                    continue
                backoff = self._backoff.get(secret.arn, Backoff())
            try:
                action = plan(secret, now, backoff)
            except errors.SecretsManagerError:
                continue  # rules the service accepted earlier but cannot read now
            if action is None:
                continue
            with self._lock:
                self._running.add(secret.arn)
            self._pool.submit(self._run, secret.arn, action)

    def _start(self, arn: str) -> str:
        token = str(uuid.uuid4())

        def begin(secret: Secret, now: float) -> list[str]:
            dropped = rotation.begin_rotation(
                secret, token, now, function_arn=None, rules=None, immediately=True
            )
            secret.rotation_retry_until = retry_deadline(secret, now)
            refresh_next_rotation(secret, now)
            return dropped

        self.service.edit(arn, begin)
        return token

    def _claim(self, arn: str):
        """The claim on a secret's rotation, across every node sharing the store."""
        return self.service.storage.claim_lock(f"rotation {arn}")

    def _run(self, arn: str, action: Action) -> None:
        try:
            with self._claim(arn) as held:
                if held:
                    self._run_claimed(arn, action)
        finally:
            with self._lock:
                self._running.discard(arn)

    def _run_claimed(self, arn: str, action: Action) -> None:
        try:
            # Another node may have finished it between our look and the claim: look again.
            secret, _ = self.service.load(arn)
            again = plan(secret, self.clock(), Backoff())
            if again is None:
                return
            token = again.token or self._start(arn)
            if again.kind == "resume":
                self._extend_window(arn)
            ok = self.rotator.rotate(arn, token)
        except Exception:
            log.exception("rotation run failed", extra={"secret": arn})
            ok = False
        with self._lock:
            if ok:
                self._backoff.pop(arn, None)
            else:
                failures = self._backoff.get(arn, Backoff()).failures + 1
                self._backoff[arn] = backoff_after(
                    failures, self.clock(), self.retry_base, self.retry_ceiling
                )

    def _extend_window(self, arn: str) -> None:
        """A resumed rotation outside its retry window gets the window now open."""

        def extend(secret: Secret, now: float) -> None:
            if secret.rotation_retry_until is None or secret.rotation_retry_until <= now:
                secret.rotation_retry_until = retry_deadline(secret, now)

        self.service.edit(arn, extend)

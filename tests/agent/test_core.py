"""The cache core as the parameter route uses it, and faults on the backend path: a fake
backend and a fake clock, no sockets, no sleeps (one test goes through HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from secretsd.agent import messages
from secretsd.agent.backend import BackendError
from secretsd.agent.cache import Policy, SecretCache
from secretsd.agent.parameters import ParameterCache
from secretsd.agent.query import ParameterLookup

from .fakes import FakeClock, FakeSecretsManager
from .support import InProcess

KEY = ParameterLookup("/app/db-host", None, None, False)
SECRET = ("db/app", None, None)
INTERNAL = b'{"__type":"InternalFailure"}'


class FakeSSM:
    def __init__(self) -> None:
        self.values = {"/app/db-host": "db1.internal"}
        self.calls = 0
        self.failure: BackendError | None = None
        self.gate: asyncio.Event | None = None

    async def get_parameter(self, selector: str, with_decryption: bool) -> dict:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        if selector not in self.values:
            raise BackendError(400, "ParameterNotFound", "not found", transient=False)
        return {"Parameter": {"Name": selector, "Value": self.values[selector], "Version": 1}}


def parameters(ttl: float = 300, max_stale: float = 900, capacity: int = 1000):
    ssm, clock = FakeSSM(), FakeClock()
    cache = ParameterCache(ssm, ttl, max_stale, True, capacity, clock)
    return cache, ssm, clock


def value(response: bytes) -> str:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])["Parameter"]["Value"]


def run(coro):
    return asyncio.run(coro)


def test_an_expired_parameter_is_fetched_again():
    cache, ssm, clock = parameters(ttl=10)

    async def scenario():
        assert value(await cache.get(KEY)) == "db1.internal"
        clock.advance(9)
        assert value(await cache.get(KEY)) == "db1.internal"
        ssm.values[KEY.name] = "db2.internal"
        clock.advance(2)
        assert value(await cache.get(KEY)) == "db2.internal"

    run(scenario())
    assert ssm.calls == 2
    assert (cache.counters.misses, cache.counters.replaced, cache.counters.hits) == (1, 1, 1)


def test_ttl_zero_keeps_nothing_but_concurrent_requests_share_a_call():
    cache, ssm, _clock = parameters(ttl=0)

    async def scenario():
        ssm.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(cache.get(KEY)) for _ in range(20)]
        await asyncio.sleep(0)
        ssm.gate.set()
        assert {value(r) for r in await asyncio.gather(*waiters)} == {"db1.internal"}
        assert ssm.calls == 1
        await cache.get(KEY)
        assert ssm.calls == 2

    run(scenario())
    assert len(cache) == 0 and cache.counters.coalesced == 19


def test_a_parameter_is_served_stale_at_once_while_ssm_fails():
    cache, ssm, clock = parameters(ttl=10, max_stale=60)

    async def scenario():
        await cache.get(KEY)
        ssm.failure = BackendError.timeout()
        clock.advance(11)
        assert value(await cache.get(KEY)) == "db1.internal"  # waited for the failure
        clock.advance(6)
        ssm.gate = asyncio.Event()  # SSM now hangs: the retry must not hold the request
        assert value(await asyncio.wait_for(cache.get(KEY), 1)) == "db1.internal"
        ssm.gate.set()
        clock.advance(60)  # past ttl + max_stale
        with pytest.raises(BackendError) as failure:
            await cache.get(KEY)
        return failure.value

    assert run(scenario()).status == 504
    assert cache.counters.stale_served == 2 and len(cache) == 0


def test_a_definite_parameter_error_drops_the_entry():
    cache, ssm, clock = parameters(ttl=10)

    async def scenario():
        await cache.get(KEY)
        del ssm.values[KEY.name]
        clock.advance(11)
        with pytest.raises(BackendError) as failure:
            await cache.get(KEY)
        return failure.value

    assert run(scenario()).code == "ParameterNotFound"
    assert len(cache) == 0


def test_parameters_are_evicted_oldest_write_first():
    cache, ssm, _clock = parameters(capacity=2)
    keys = [ParameterLookup(f"/p/{n}", None, None, False) for n in range(3)]
    for key in keys:
        ssm.values[key.name] = key.name

    async def scenario():
        for key in keys:
            await cache.get(key)

    run(scenario())
    assert set(cache.entries) == set(keys[1:]) and cache.counters.evictions == 1


class BrokenDescribe(FakeSecretsManager):
    """A DescribeSecret answer our code cannot read: a fault on our side, not a backend's."""

    async def describe_secret(self, secret_id: str) -> dict:
        answer = await super().describe_secret(secret_id)
        return answer | {"VersionIdsToStages": ["not", "a", "mapping"]}


def fault_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("secretsd.agent")]


def test_a_fault_in_a_flight_is_logged_with_its_traceback_and_answered_as_500(caplog):
    backend, clock = BrokenDescribe(), FakeClock()
    backend.put("db/app", "v1-value")
    cache = SecretCache(backend, Policy(ttl=10, refresh_ahead=0.0), clock)

    async def scenario():
        await cache.get(SECRET)
        clock.advance(11)
        backend.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(cache.get(SECRET)) for _ in range(3)]
        await asyncio.sleep(0)
        backend.gate.set()
        return await asyncio.gather(*waiters, return_exceptions=True)

    with caplog.at_level(logging.DEBUG, logger="secretsd.agent"):
        answers = run(scenario())
    assert all(isinstance(a, BackendError) and a.status == 500 for a in answers)
    assert answers[0].code == messages.INTERNAL_FAILURE and answers[0].body == INTERNAL
    [record] = fault_records(caplog)  # once per flight, not once per waiter
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is AttributeError
    assert "v1-value" not in caplog.text


def test_a_fault_in_a_background_refresh_is_logged_too(caplog):
    backend, clock = BrokenDescribe(), FakeClock()
    backend.put("db/app", "v1")
    cache = SecretCache(backend, Policy(ttl=100, refresh_ahead=20), clock)

    async def scenario():
        await cache.get(SECRET)
        clock.advance(85)
        assert cache.peek(SECRET) is not None  # starts the refresh-ahead nobody awaits
        for _ in range(5):
            await asyncio.sleep(0)

    with caplog.at_level(logging.DEBUG, logger="secretsd.agent"):
        run(scenario())
    assert backend.count("DescribeSecret") == 1
    [record] = fault_records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None


class UnreadableValue(FakeSecretsManager):
    """GetSecretValue answers with a SecretBinary that is no bytes: rendering it fails."""

    async def get_secret_value(self, secret_id, version_id, version_stage) -> dict:
        answer = await super().get_secret_value(secret_id, version_id, version_stage)
        return answer | {"SecretBinary": 12345}


def test_a_fault_on_the_backend_path_is_a_500_over_http_and_an_error_log(caplog):
    backend = UnreadableValue()
    backend.put("db/app", "v")
    with caplog.at_level(logging.DEBUG, logger="secretsd.agent"), InProcess(backend) as agent:
        assert agent.get("/secretsmanager/get?secretId=db/app") == (500, INTERNAL)
        assert agent.get("/ping")[0] == 200  # the agent goes on
    [record] = [r for r in fault_records(caplog) if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is TypeError

"""Cache semantics with a fake backend and a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import asyncio
import json

import pytest

from secretsd.agent.backend import BackendError
from secretsd.agent.cache import Policy, SecretCache

from .fakes import FakeClock, FakeSecretsManager

KEY = ("db/app", None, None)


def make(**policy) -> tuple[SecretCache, FakeSecretsManager, FakeClock]:
    backend, clock = FakeSecretsManager(), FakeClock()
    backend.put("db/app", "v1")
    defaults = {"refresh_ahead": 0.0}
    return SecretCache(backend, Policy(**(defaults | policy)), clock), backend, clock


def value(response: bytes) -> str:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])["SecretString"]


def run(coro):
    return asyncio.run(coro)


def test_miss_then_fresh_hits_call_nothing():
    cache, backend, clock = make(ttl=300)

    async def scenario():
        assert value(await cache.get(KEY)) == "v1"
        clock.advance(299)
        for _ in range(5):
            assert value(await cache.get(KEY)) == "v1"

    run(scenario())
    assert backend.calls == [("GetSecretValue", "db/app")]
    assert cache.counters.misses == 1 and cache.counters.hits == 5


def test_expired_entry_is_confirmed_with_describe_secret_on_the_arn():
    cache, backend, clock = make(ttl=10)

    async def scenario():
        await cache.get(KEY)
        clock.advance(11)
        assert value(await cache.get(KEY)) == "v1"
        clock.advance(5)  # the confirmation started a new lifetime
        await cache.get(KEY)

    run(scenario())
    assert backend.calls == [
        ("GetSecretValue", "db/app"),
        ("DescribeSecret", backend.arn("db/app")),
    ]


def test_expired_entry_whose_stage_moved_is_fetched_again():
    cache, backend, clock = make(ttl=10)

    async def scenario():
        await cache.get(KEY)
        backend.put("db/app", "v2")
        clock.advance(5)
        assert value(await cache.get(KEY)) == "v1"  # fresh: the change is not seen yet
        clock.advance(6)
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())
    assert backend.count("GetSecretValue") == 2 and backend.count("DescribeSecret") == 1


def test_version_id_entry_is_kept_while_the_version_exists():
    cache, backend, clock = make(ttl=10)
    first = next(iter(backend.secrets["db/app"]["versions"]))
    key = ("db/app", first, None)

    async def scenario():
        await cache.get(key)
        backend.put("db/app", "v2")  # the first version becomes AWSPREVIOUS, still exists
        clock.advance(11)
        assert value(await cache.get(key)) == "v1"

    run(scenario())
    assert backend.count("GetSecretValue") == 1


def test_stage_key_checks_that_stage():
    cache, backend, clock = make(ttl=10)
    key = ("db/app", None, "AWSPREVIOUS")
    backend.put("db/app", "v2")

    async def scenario():
        assert value(await cache.get(key)) == "v1"
        backend.put("db/app", "v3")  # AWSPREVIOUS moves to v2
        clock.advance(11)
        assert value(await cache.get(key)) == "v2"

    run(scenario())


def test_ttl_zero_revalidates_every_request():
    cache, backend, _ = make(ttl=0)

    async def scenario():
        for _ in range(3):
            assert value(await cache.get(KEY)) == "v1"

    run(scenario())
    assert backend.count("GetSecretValue") == 1 and backend.count("DescribeSecret") == 2


def test_concurrent_misses_make_one_backend_call():
    cache, backend, _ = make()
    backend.gate = asyncio.Event()

    async def scenario():
        waiters = [asyncio.ensure_future(cache.get(KEY)) for _ in range(200)]
        await asyncio.sleep(0)
        backend.gate.set()
        return await asyncio.gather(*waiters)

    results = run(scenario())
    assert {value(r) for r in results} == {"v1"}
    assert backend.count() == 1
    assert cache.counters.coalesced == 199


def test_concurrent_revalidations_make_one_describe():
    cache, backend, clock = make(ttl=10)

    async def scenario():
        await cache.get(KEY)
        clock.advance(11)
        backend.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(cache.get(KEY)) for _ in range(50)]
        await asyncio.sleep(0)
        backend.gate.set()
        await asyncio.gather(*waiters)

    run(scenario())
    assert backend.count("DescribeSecret") == 1


def test_concurrent_misses_share_the_error():
    cache, backend, _ = make()
    backend.gate = asyncio.Event()
    missing = ("nope", None, None)

    async def scenario():
        waiters = [asyncio.ensure_future(cache.get(missing)) for _ in range(20)]
        await asyncio.sleep(0)
        backend.gate.set()
        return await asyncio.gather(*waiters, return_exceptions=True)

    results = run(scenario())
    assert all(isinstance(r, BackendError) and r.status == 400 for r in results)
    assert backend.count() == 1


def test_transient_failure_serves_stale_up_to_max_stale_then_fails():
    cache, backend, clock = make(ttl=10, max_stale=60)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.timeout()
        clock.advance(11)
        assert value(await cache.get(KEY)) == "v1"
        clock.advance(30)
        assert value(await cache.get(KEY)) == "v1"
        clock.advance(30)  # 71 s after the last confirmation: past ttl + max_stale
        with pytest.raises(BackendError) as failure:
            await cache.get(KEY)
        return failure.value

    error = run(scenario())
    assert error.status == 504 and error.body == b'{"__type":"TimeoutError", "message":"Timeout"}'
    assert cache.counters.stale_served == 2
    assert len(cache) == 0


def test_stale_retry_does_not_hammer_a_down_backend():
    cache, backend, clock = make(ttl=300, max_stale=900)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.io()
        clock.advance(301)
        for _ in range(10):
            await cache.get(KEY)
            clock.advance(0.1)

    run(scenario())
    assert backend.count("DescribeSecret") == 1


def test_backend_recovery_after_stale_period():
    cache, backend, clock = make(ttl=10, max_stale=60)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.io()
        clock.advance(11)
        await cache.get(KEY)
        backend.failure = None
        backend.put("db/app", "v2")
        clock.advance(6)
        assert value(await cache.get(KEY)) == "v1"  # still stale; the retry runs behind it
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())


def test_without_ignore_transient_errors_the_error_is_returned():
    cache, backend, clock = make(ttl=10, serve_stale=False)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.io()
        clock.advance(11)
        with pytest.raises(BackendError) as failure:
            await cache.get(KEY)
        return failure.value

    assert run(scenario()).status == 502


def test_client_error_on_revalidation_is_returned_not_hidden():
    cache, backend, clock = make(ttl=10)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError(400, "AccessDeniedException", "denied", transient=False)
        clock.advance(11)
        with pytest.raises(BackendError) as failure:
            await cache.get(KEY)
        return failure.value

    assert run(scenario()).code == "AccessDeniedException"
    assert len(cache) == 0


def test_refresh_ahead_revalidates_in_background_and_never_blocks():
    cache, backend, clock = make(ttl=100, refresh_ahead=20)

    async def scenario():
        await cache.get(KEY)
        backend.put("db/app", "v2")
        backend.gate = asyncio.Event()
        clock.advance(85)  # within the last 20 s of life
        assert value(cache.peek(KEY)) == "v1"  # answered at once, the gate is closed
        assert value(cache.peek(KEY)) == "v1"
        backend.gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(1)
        assert value(cache.peek(KEY)) == "v2"

    run(scenario())
    assert cache.counters.refresh_ahead == 1
    assert backend.count("DescribeSecret") == 1


def test_cold_entries_are_not_refreshed_ahead():
    cache, backend, clock = make(ttl=100, refresh_ahead=20)

    async def scenario():
        await cache.get(KEY)
        clock.advance(50)
        await cache.get(KEY)
        await asyncio.sleep(0)

    run(scenario())
    assert backend.count() == 1


def test_pending_rotation_shortens_revalidation():
    cache, backend, clock = make(ttl=300, pending_interval=5)

    async def scenario():
        await cache.get(KEY)
        pending = backend.put("db/app", "v2", stages=("AWSPENDING",))
        clock.advance(301)
        assert value(await cache.get(KEY)) == "v1"  # confirmed; AWSPENDING seen
        backend.move_stage("db/app", "AWSCURRENT", pending)  # finishSecret
        clock.advance(6)
        assert value(await cache.get(KEY)) == "v2"  # seen 6 s later, not 300

    run(scenario())


def test_refresh_now_skips_cache_and_describe():
    cache, backend, _clock = make(ttl=300)

    async def scenario():
        await cache.get(KEY)
        backend.put("db/app", "v2")
        assert value(await cache.get(KEY, refresh_now=True)) == "v2"  # at once, no interval
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())
    assert backend.count("DescribeSecret") == 0 and backend.count("GetSecretValue") == 2


async def calls_reach(backend: FakeSecretsManager, count: int) -> None:
    """Let the loop run until the backend has seen ``count`` calls (no clock involved)."""
    for _ in range(100):
        if backend.count() >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{backend.count()} backend calls, expected {count}")


def test_refresh_now_never_answers_from_a_call_that_started_before_it():
    cache, backend, _clock = make(ttl=300)
    backend.read_at_start = True

    async def scenario():
        await cache.get(KEY)
        backend.gate = asyncio.Event()
        first = asyncio.create_task(cache.get(KEY, refresh_now=True))
        await calls_reach(backend, 2)
        backend.put("db/app", "v2")  # lands while the first refresh is in flight
        later = [asyncio.create_task(cache.get(KEY, refresh_now=True)) for _ in range(5)]
        for _ in range(10):
            await asyncio.sleep(0)
        assert backend.count() == 2  # one call in flight per key; the others wait for the next
        backend.gate.set()
        assert value(await first) == "v1"  # its call started before the write
        assert [value(answer) for answer in await asyncio.gather(*later)] == ["v2"] * 5
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())
    assert backend.count("GetSecretValue") == 3
    assert cache.counters.refresh_now_queued == 5 and cache.counters.coalesced == 4


def test_refresh_now_in_a_loop_reaches_the_backend_every_time():
    cache, backend, _clock = make(ttl=300)

    async def scenario():
        await cache.get(KEY)
        for round_ in range(20):
            backend.put("db/app", f"v{round_}")
            assert value(await cache.get(KEY, refresh_now=True)) == f"v{round_}"

    run(scenario())
    assert backend.count("GetSecretValue") == 21


def test_a_flood_of_refreshes_keeps_one_call_in_flight():
    cache, backend, _clock = make(ttl=300)

    async def scenario():
        backend.gate = asyncio.Event()
        first = [asyncio.create_task(cache.get(KEY, refresh_now=True)) for _ in range(100)]
        await calls_reach(backend, 1)
        for _ in range(10):
            await asyncio.sleep(0)
        assert backend.count() == 1
        backend.gate.set()
        answers = await asyncio.gather(*first)
        assert {value(answer) for answer in answers} == {"v1"}

    run(scenario())
    # The first request's call, then one call for the 99 that arrived while it flew.
    assert backend.count("GetSecretValue") == 2


def test_a_slow_miss_does_not_overwrite_a_later_refresh():
    cache, backend, clock = make(ttl=300)
    backend.read_at_start = True

    async def scenario():
        held = asyncio.Event()
        backend.gates.append(held)
        miss = asyncio.create_task(cache.get(KEY))  # reads v1, then is held
        await calls_reach(backend, 1)
        backend.put("db/app", "v2")
        clock.advance(0.01)
        assert value(await cache.get(KEY, refresh_now=True)) == "v2"
        held.set()
        assert value(await miss) == "v2"  # the newer entry, not the value its call read
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())


def test_refresh_now_error_leaves_cache_as_it_was():
    cache, backend, clock = make(ttl=300)

    async def scenario():
        await cache.get(KEY)
        clock.advance(2)
        backend.failure = BackendError.timeout()
        with pytest.raises(BackendError):
            await cache.get(KEY, refresh_now=True)
        backend.failure = None
        assert value(await cache.get(KEY)) == "v1"

    run(scenario())
    assert backend.count("GetSecretValue") == 2


def test_eviction_drops_least_recently_written():
    cache, backend, _clock = make(ttl=300, capacity=2)
    for name in ("a", "b", "c"):
        backend.put(name, name)

    async def scenario():
        await cache.get(("a", None, None))
        await cache.get(("b", None, None))
        await cache.get(("a", None, None))  # a read, not a write: a stays oldest
        await cache.get(("c", None, None))

    run(scenario())
    assert set(cache.entries) == {("b", None, None), ("c", None, None)}
    assert cache.counters.evictions == 1


def test_name_and_arn_are_separate_entries():
    cache, backend, _ = make()

    async def scenario():
        await cache.get(KEY)
        await cache.get((backend.arn("db/app"), None, None))

    run(scenario())
    assert backend.count("GetSecretValue") == 2


def test_entry_repr_hides_the_value():
    cache, _, _ = make()
    run(cache.get(KEY))
    assert "v1" not in repr(cache.entries[KEY])


def test_once_failing_requests_do_not_wait_for_the_retry():
    cache, backend, clock = make(ttl=10, max_stale=600)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.timeout()
        clock.advance(11)
        assert value(await cache.get(KEY)) == "v1"  # this one waited for the failure
        clock.advance(6)  # past the retry point: the next request starts a retry
        backend.gate = asyncio.Event()  # and the backend now hangs
        answered = await asyncio.wait_for(cache.get(KEY), 1)
        assert value(answered) == "v1"
        assert backend.count("DescribeSecret") == 2  # the retry runs in the background
        backend.failure = None
        backend.put("db/app", "v2")
        backend.gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert value(await cache.get(KEY)) == "v2"

    run(scenario())


def test_stale_served_counts_responses_not_attempts():
    cache, backend, clock = make(ttl=10, max_stale=600)

    async def scenario():
        await cache.get(KEY)
        backend.failure = BackendError.io()
        backend.gate = asyncio.Event()
        clock.advance(11)
        waiters = [asyncio.ensure_future(cache.get(KEY)) for _ in range(5)]
        await asyncio.sleep(0)
        backend.gate.set()
        await asyncio.gather(*waiters)
        assert cache.counters.stale_served == 5
        clock.advance(6)
        backend.gate = asyncio.Event()
        await cache.get(KEY)  # answered stale at once; the retry waits at the gate
        backend.gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert cache.counters.stale_served == 6  # the background retry served nobody

    run(scenario())

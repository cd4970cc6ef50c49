"""Health, rotation and cost reports: the pure builders, then through a live agent and
server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from secretsd.client import (
    SecretNotFound,
    SecretsClient,
    SourceUnavailable,
    estimate_cost,
    rotation_status,
)
from secretsd.client._agent import AgentSource
from secretsd.client._reports import cost_report
from secretsd.client._usage import SourceUsage, Usage
from tests.agent.support import TOKEN
from tests.client.test_agent_connection import ScriptedPeer
from tests.support.wait import wait_for

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


# -- estimate_cost (pure) -----------------------------------------------------------------


def test_direct_cost_matches_the_seeds_example():
    """1,000 reads an hour for 30 days: 720,000 calls, $3.60."""
    estimate = estimate_cost(1000, ttl_seconds=300)
    assert estimate.direct_calls == 720_000
    assert estimate.direct_cost == pytest.approx(3.60)


def test_through_the_agent_one_call_per_ttl_per_secret():
    estimate = estimate_cost(1000, ttl_seconds=300)
    assert estimate.agent_calls == 30 * 86400 // 300  # 8,640
    assert estimate.agent_cost == pytest.approx(0.0432)
    assert estimate.savings == pytest.approx(1 - 8640 / 720_000)
    three = estimate_cost(1000, ttl_seconds=300, secrets=3)
    assert three.agent_calls == 3 * 8640


def test_sparse_reads_cost_the_same_either_way():
    estimate = estimate_cost(1, ttl_seconds=300)
    assert estimate.agent_calls == estimate.direct_calls == 720
    assert estimate.savings == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"requests_per_hour": -1}, {"ttl_seconds": 0}, {"secrets": 0}, {"period_seconds": 0}],
)
def test_estimate_refuses_nonsense(kwargs):
    arguments = {"requests_per_hour": 10, **kwargs}
    with pytest.raises(ValueError):
        estimate_cost(**arguments)


# -- rotation_status (pure) ---------------------------------------------------------------


def describe(**fields) -> dict:
    base = {
        "Name": "db/app",
        "VersionIdsToStages": {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]},
    }
    return {**base, **fields}


def test_a_secret_without_rotation():
    status = rotation_status(describe(), NOW)
    assert status.rotation_enabled is False
    assert status.has_current_version is True
    assert status.rotation_in_progress is False
    assert status.pending_version_id is None
    assert status.overdue is False
    assert status.to_dict()["next_rotation"] is None


def test_a_rotation_in_progress_names_the_pending_version():
    stages = {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"]}
    status = rotation_status(describe(VersionIdsToStages=stages), NOW)
    assert status.rotation_in_progress is True
    assert status.pending_version_id == "v2"


@pytest.mark.parametrize(
    ("next_rotation", "enabled", "overdue"),
    [
        # NextRotationDate is the last second of the window: due up to and including it.
        (NOW + timedelta(days=3), True, False),
        (NOW, True, False),
        (NOW - timedelta(seconds=1), True, True),
        (NOW - timedelta(days=2), True, True),
        # A past date with rotation turned off is not overdue: nothing is expected to rotate.
        (NOW - timedelta(days=2), False, False),
    ],
)
def test_overdue_once_next_rotation_has_passed(next_rotation, enabled, overdue):
    fields = {
        "RotationEnabled": enabled,
        "RotationRules": {"AutomaticallyAfterDays": 30, "Duration": "2h"},
        "NextRotationDate": next_rotation,
    }
    assert rotation_status(describe(**fields), NOW).overdue is overdue


def test_rotation_status_is_plain_data():
    fields = {
        "RotationEnabled": True,
        "RotationRules": {"AutomaticallyAfterDays": 30},
        "LastRotatedDate": NOW - timedelta(days=2),
        "NextRotationDate": NOW + timedelta(days=28),
    }
    plain = rotation_status(describe(**fields), NOW).to_dict()
    assert json.loads(json.dumps(plain))["last_rotated"] == (NOW - timedelta(days=2)).isoformat()


# -- cost_report (pure) -------------------------------------------------------------------


def usage(requests: int, api_requests: int) -> Usage:
    sources = {
        "agent": SourceUsage(requests, requests - api_requests, api_requests, 0.0),
        "api": SourceUsage(api_requests, api_requests, 0, 0.0),
    }
    return Usage(requests, 0, sources)


def test_cost_report_keeps_this_process_and_the_agent_apart():
    report = cost_report(usage(100_000, 1_000), agent_backend_calls=500_000)
    assert report.reads_through_agent == 99_000
    assert report.cost_without_agent == pytest.approx(0.5)
    assert report.cost_of_direct_calls == pytest.approx(1_000 * 0.05 / 10_000)
    # The agent served other clients too: its calls are priced apart, not charged here.
    assert report.agent_cost == pytest.approx(2.5)
    assert report.savings == pytest.approx(1 - 1_000 / 100_000)
    plain = json.loads(json.dumps(report.to_dict()))
    assert plain["savings"] == report.savings
    assert set(plain["priced"]) == {"cost_without_agent", "cost_of_direct_calls", "agent_cost"}


def test_cost_report_without_the_agents_count():
    report = cost_report(usage(10, 0), agent_backend_calls=None)
    assert report.agent_cost is None
    assert report.savings == 1.0
    assert cost_report(usage(0, 0), agent_backend_calls=None).savings is None


def test_every_report_has_to_dict():
    counted = usage(10, 2)
    plain = json.loads(json.dumps(counted.to_dict()))
    assert plain["requests"] == 10 and plain["fallback_rate"] == 0.2
    assert plain["sources"]["api"]["answered"] == 2
    assert plain["sources"]["agent"]["average_ms"] == 0.0
    for report in (
        counted,
        counted.sources["agent"],
        cost_report(counted, 3),
        estimate_cost(10),
        rotation_status(describe(), NOW),
    ):
        json.dumps(report.to_dict())


# -- through a live agent and server ------------------------------------------------------


@pytest.fixture
def client(agent, shared_server, closing):
    return closing(
        SecretsClient(
            agent_url=agent.url,
            token=TOKEN,
            endpoint_url=shared_server.endpoint_url,
            session=shared_server.session(),
            region_name="us-east-1",
            env={},
        )
    )


def test_health_of_a_live_agent(client, sm, name):
    sm.create_secret(Name=name, SecretString="v")
    client.get(name)
    report = client.health()
    assert (report.agent_available, report.agent_status) == (True, "ok")
    assert report.agent_problem is None
    assert 0 < report.agent_response_ms < 1000
    assert report.usage.sources["agent"].answered == 1
    plain = json.loads(json.dumps(report.to_dict()))
    assert plain["fallback_rate"] == 0
    assert plain["error_rate"] == 0


def test_health_when_the_agent_is_down(shared_server, closed_url, closing, name, sm):
    sm.create_secret(Name=name, SecretString="v")
    client = closing(
        SecretsClient(
            agent_url=closed_url,
            token=TOKEN,
            endpoint_url=shared_server.endpoint_url,
            session=shared_server.session(),
            region_name="us-east-1",
            env={},
        )
    )
    assert client.get(name).source == "api"
    report = client.health()
    assert (report.agent_available, report.agent_status) == (False, "down")
    assert report.agent_response_ms is None
    assert "connection failed" in report.agent_problem
    assert report.usage.fallback_rate == 1
    assert report.usage.sources["api"].answered == 1


def test_usage_counts_answers_fallbacks_and_failures(closed_url, closing, name):
    client = closing(SecretsClient(agent_url=closed_url, endpoint_url=closed_url, env={name: "x"}))
    with pytest.raises(SourceUnavailable):
        client.get(name)
    counted = client.usage()
    assert counted.requests == 1
    assert counted.failed == 1
    assert [s.passed_on for s in counted.sources.values()] == [1, 1, 1]
    assert counted.error_rate == 1


def test_rotation_status_through_the_api(client, sm, name):
    sm.create_secret(Name=name, SecretString=json.dumps({"api_key": "k"}))
    assert client.rotation_status(name).rotation_enabled is False
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN="secretsd-generic",
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    deadline = time.monotonic() + 20
    while (status := client.rotation_status(name)).last_rotated is None:
        assert time.monotonic() < deadline, "the rotation did not finish"
        time.sleep(0.1)
    assert status.rotation_enabled is True
    assert status.has_current_version is True
    assert status.rotation_in_progress is False
    assert status.next_rotation > status.last_rotated
    assert status.overdue is False
    pending = sm.put_secret_value(SecretId=name, SecretString="p", VersionStages=["AWSPENDING"])
    status = client.rotation_status(name)
    assert status.rotation_in_progress is True
    assert status.pending_version_id == pending["VersionId"]
    with pytest.raises(SecretNotFound):
        client.rotation_status(name + "-missing")


def test_cost_report_reads_the_agents_backend_calls(client, sm, name):
    sm.create_secret(Name=name, SecretString="v")
    for _ in range(20):
        client.get(name)
    report = client.cost_report()
    assert report.requests == 20 and report.reads_through_agent == 20
    assert report.api_calls_by_client == 0
    assert report.agent_backend_calls >= 1  # at least this secret's one fetch
    assert report.cost_without_agent == pytest.approx(20 * 0.05 / 10_000)
    assert report.savings == 1.0  # none of this process's reads was a direct call


def test_the_agents_ssm_calls_are_not_counted_as_secrets_manager_calls():
    metrics = (
        b"# TYPE secretsd_agent_backend_calls counter\n"
        b'secretsd_agent_backend_calls_total{operation="GetSecretValue",outcome="ok"} 3.0\n'
        b'secretsd_agent_backend_calls_total{operation="DescribeSecret",outcome="ok"} 4.0\n'
        b'secretsd_agent_backend_calls_total{operation="GetParameter",outcome="ok"} 50.0\n'
    )
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(metrics), metrics)
    peer = ScriptedPeer(lambda conn: conn.sendall(answer))
    source = AgentSource(f"http://127.0.0.1:{peer.port}", TOKEN, {})
    try:
        assert source.backend_calls() == 7
        assert peer.requests[0].startswith(b"GET /metrics HTTP/1.1")
    finally:
        source.close()
        peer.close()


DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("rules", "window"),
    [
        # Without Duration a window in days runs to midnight; with it, Duration long.
        ({"ScheduleExpression": "cron(0 10 * * ? *)"}, timedelta(hours=14)),
        ({"ScheduleExpression": "cron(0 10 * * ? *)", "Duration": "2h"}, timedelta(hours=2)),
        ({"ScheduleExpression": "rate(10 days)"}, DAY),
        ({"ScheduleExpression": "rate(10 days)", "Duration": "3h"}, timedelta(hours=3)),
    ],
    ids=["cron", "cron-duration", "rate", "rate-duration"],
)
def test_overdue_from_the_windows_end_as_the_server_reports_it(client, sm, name, rules, window):
    sm.create_secret(Name=name, SecretString=json.dumps({"api_key": "k"}))
    sm.rotate_secret(SecretId=name, RotationLambdaARN="secretsd-generic", RotationRules=rules)
    status = wait_for(lambda: (s := client.rotation_status(name)).last_rotated and s, timeout=20)
    end = status.next_rotation + timedelta(seconds=1)  # NextRotationDate: the last second
    start = end - window
    assert start.minute == 0 and start.second == 0  # a window opens on the hour
    for moment in (start, start + timedelta(minutes=1), status.next_rotation):
        assert client.rotation_status(name, now=moment).overdue is False, moment
    assert client.rotation_status(name, now=end).overdue is True

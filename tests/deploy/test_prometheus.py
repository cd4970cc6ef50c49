"""deploy/prometheus and deploy/grafana: the alert rules pass promtool's check and its unit
tests, and every metric the rules and the dashboard query is one a server or agent exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agent.support import start_agent, write_config
from tests.support.metrics import METRICS_TOKEN, http
from tests.support.server import start_server

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "secretsd.json"
REQUIRE_PROMTOOL = os.environ.get("SECRETSD_REQUIRE_PROMTOOL") == "1"
# Our metrics all start so; `up` is Prometheus's own.
METRIC = re.compile(r"\b(secretsd_[a-zA-Z0-9_]+)")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if REQUIRE_PROMTOOL:
            pytest.fail(f"{reason} (required here: SECRETSD_REQUIRE_PROMTOOL=1)")
        pytest.skip(reason)
    return found


def test_alert_rules_pass_promtool_check() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_example_configuration_passes_promtool_check() -> None:
    # Syntax only: the token file it names exists on a Prometheus host, not here.
    done = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", "prometheus.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_fire_as_their_unit_tests_say() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every alert of the rules has a test that expects it to fire.
    alerts = set(re.findall(r"- alert: (\w+)", (RULES / "alerts.yml").read_text()))
    firing = set(
        re.findall(
            r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels",
            (RULES / "alerts_test.yml").read_text(),
        )
    )
    assert alerts and alerts == firing


def exposed(text: str) -> set[str]:
    """The metric names a scrape exposes, samples of families still empty included."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Every metric name a server (with the per-secret opt-in) and an agent export."""
    directory = tmp_path_factory.mktemp("exported")
    token = directory / "metrics-token"
    token.write_text(METRICS_TOKEN)
    server = start_server(
        directory / "data",
        "--metrics",
        "--metrics-token-file",
        str(token),
        "--metrics-secret-names",
    )
    try:
        agent = start_agent(write_config(directory / "agent"), dict(server.env))
        try:
            status, agent_text = agent.get("/metrics")
            assert status == 200
        finally:
            agent.stop()
        answer = http(
            server.endpoint_url, "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert answer.status == 200
    finally:
        server.stop()
    return exposed(answer.body.decode()) | exposed(agent_text.decode())


def test_the_alert_rules_query_only_exported_metrics(exported: set[str]) -> None:
    queried = set(METRIC.findall((RULES / "alerts.yml").read_text()))
    assert queried and queried <= exported, queried - exported


def test_the_dashboard_is_json_and_queries_only_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "secretsd"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    expressions = [t["expr"] for p in panels for t in p["targets"]]
    assert len(expressions) >= len(panels)
    queried = {name for expr in expressions for name in METRIC.findall(expr)}
    assert queried <= exported, queried - exported
    # Each panel has a place of its own on the grid.
    places = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]}
    assert len(places) == len(dashboard["panels"])

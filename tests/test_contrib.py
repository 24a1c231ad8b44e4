"""
The files in C{contrib/}: the Grafana dashboard and the Prometheus alert
rules name only metrics the server exposes, every alert is explained in
README, and the systemd unit passes C{systemd-analyze verify} with
options C{twistd chat} accepts.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import pytest_twisted
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task

from chatservice.looplag import LoopLagMonitor
from chatservice.metrics import make_registry
from chatservice.persistence.store import ChatStore
from chatservice.tap import Options
from conftest import make_factory
from netclient import wait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRIB = os.path.join(ROOT, "contrib")
#: A metric name as PromQL expressions write it.
METRIC = re.compile(r"\b((?:chatservice|process)_[a-z_]+)")


def read(name: str) -> str:
    with open(os.path.join(CONTRIB, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """Every sample name a server with a store and the lag monitor exposes."""
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path_factory.mktemp("contrib") / "chat.db"), reactor)
    store.open()
    try:
        clock = task.Clock()
        lag = LoopLagMonitor(clock)
        text = generate_latest(make_registry(make_factory(clock, store=store).chat, lag))
    finally:
        pytest_twisted.blockon(wait(store.close()))
    return {sample.name for family in text_string_to_metric_families(text.decode())
            for sample in family.samples}


def test_alert_rules_name_exposed_metrics_and_are_explained(exposed):
    """Every metric in an alert expression exists; every alert is in README."""
    text = read("prometheus-alerts.yml")
    used = set(METRIC.findall(text))
    assert used and used <= exposed, used - exposed
    alerts = re.findall(r"^\s*- alert: (\w+)$", text, re.M)
    assert set(alerts) >= {"ChatserviceEventLoopLag", "ChatserviceDatabaseWritesDropped",
                           "ChatserviceSendqDropsSpiking", "ChatserviceNearFull"}
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for alert in alerts:
        assert f"**{alert}**" in readme, alert


def test_alert_rules_are_valid_yaml():
    """The rules file parses, each rule with an expression and a summary."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed here")
    [group] = yaml.safe_load(read("prometheus-alerts.yml"))["groups"]
    for rule in group["rules"]:
        assert rule["expr"].strip() and rule["annotations"]["summary"]


def test_alert_rules_pass_promtool():
    """promtool, where installed, accepts the rules."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed here")
    done = subprocess.run([promtool, "check", "rules", os.path.join(CONTRIB, "prometheus-alerts.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_names_exposed_metrics(exposed):
    """The dashboard is JSON whose every query names metrics the server exposes."""
    dashboard = json.loads(read("grafana-dashboard.json"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used <= exposed, used - exposed
    for wanted in ("chatservice_event_loop_lag_seconds_bucket", "chatservice_max_connections",
                   "chatservice_database_writes_dropped_total", "process_open_fds",
                   "chatservice_disconnects_total", "chatservice_deliveries_total"):
        assert wanted in used, wanted


def test_systemd_unit_verifies(tmp_path):
    """systemd-analyze verify accepts the unit, and twistd chat its options."""
    unit = read("chatservice.service")
    command = shlex.split(re.search(r"^ExecStart=(.*?[^\\])$", unit, re.M | re.S)
                          .group(1).replace("\\\n", " "))
    assert command[1:4] == ["-n", "--pidfile=", "chat"]
    options = Options()
    options.parseOptions(command[4:])
    assert options["metrics-port"] == "tcp:9100:interface=127.0.0.1"
    nofile = int(re.search(r"^LimitNOFILE=(\d+)$", unit, re.M).group(1))
    assert nofile > options["max-connections"] * 3 // 2
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "StateDirectory=chatservice", "Restart=on-failure"):
        assert f"\n{setting}\n" in unit, setting
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian package 'systemd')")
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    path = tmp_path / "chatservice.service"
    path.write_text(unit.replace(command[0], twistd), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and str(path) not in done.stdout + done.stderr, (
        done.stdout + done.stderr)

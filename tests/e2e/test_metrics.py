"""`GET /metrics`: Prometheus text a real parser (prometheus_client from PyPI) reads, with every
counter `rumor info` shows, the gauges and the histograms, and counters that move."""

import urllib.request

import pytest

from conftest import wait_until
from test_replication import put

parser = pytest.importorskip("prometheus_client.parser", reason="pip install prometheus_client (CI installs it)")


def scrape(agent, token=None):
    request = urllib.request.Request(f"http://{agent.api}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def value(families, name, **labels):
    family = name
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        if family.endswith(suffix) and family[: -len(suffix)] in families:
            family = family[: -len(suffix)]
    for sample in families[family].samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_parse_and_counters_move(swarm):
    a = swarm.agent("m1")
    b = swarm.agent("m2", join=[a.address])
    wait_until(lambda: len(a.members()) == 2, 10, "a and b see each other")
    put(a, "before", "1")
    first = scrape(a)
    expected = {
        "rumor_members": "gauge", "rumor_keys": "gauge", "rumor_tombstones": "gauge", "rumor_health_score": "gauge",
        "rumor_change_log_seq": "gauge", "rumor_peers_not_in_sync": "gauge",
        "rumor_last_sync_age_seconds": "gauge", "rumor_put_seconds": "histogram", "rumor_put_wait_seconds": "histogram",
        "rumor_push_pull_seconds": "histogram", "rumor_probe_round_trip_seconds": "histogram",
        "rumor_replication_pushes_sent": "counter",
    }
    for name, kind in expected.items():
        assert name in first and first[name].type == kind, (name, first.get(name))
    for counter in a.info()["counters"]:
        assert f"rumor_{counter}" in first and first[f"rumor_{counter}"].type == "counter", counter
    assert value(first, "rumor_members", state="alive") == 2
    pushes = value(first, "rumor_replication_pushes_sent_total")
    puts = value(first, "rumor_put_seconds_count")
    for index in range(5):
        put(a, f"k{index}", "v")
    a.cli("put", "waited", "v", "--wait", "all")
    second = scrape(a)
    assert value(second, "rumor_replication_pushes_sent_total") >= pushes + 6
    assert value(second, "rumor_put_seconds_count") == puts + 6
    assert value(second, "rumor_put_wait_seconds_count") >= 1
    assert value(second, "rumor_keys") == 7
    assert value(scrape(b), "rumor_members", state="alive") == 2
    # Probes run every second (lan profile): two nodes probe each other within a few seconds.
    wait_until(lambda: value(scrape(a), "rumor_probe_round_trip_seconds_count") >= 1, 10, "a probe round trip is recorded")


def test_metrics_need_the_api_token(swarm):
    agent = swarm.agent("guarded", extra=["--api-token", "s3cret"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(agent)
    assert refused.value.code == 401
    assert "rumor_keys" in scrape(agent, token="s3cret")

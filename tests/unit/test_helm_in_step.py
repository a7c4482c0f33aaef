"""The Helm chart in step with what lies beside it: the production values (scale, ServiceMonitors that scrape
their Services), docker-compose.yml (same commands, ports, settings and drain), the README's install section, and
ordersctl's version. The chart on its own: tests/unit/test_helm_chart.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from ordersctl import __version__
from tests.conftest import ROOT
from tests.helm_chart import CHART, PRODUCTION, container_of, env_of, one, pod_spec, rendered

COMPOSE = ROOT / "docker-compose.yml"


def test_production_values_scale_and_turn_on_the_servicemonitor() -> None:
    docs = rendered(PRODUCTION)
    consume = one(docs, "Deployment", "orders-ordersctl-consume")
    assert consume["spec"]["replicas"] == 3
    assert container_of(consume)["command"][:4] == ["ordersctl", "consume", "--workers", "4"]
    serve = container_of(one(docs, "Deployment", "orders-ordersctl-serve"))
    assert serve["command"][-2:] == ["--processes", "2"]
    assert one(docs, "PodDisruptionBudget", "orders-ordersctl-serve")["spec"]["minAvailable"] == 2
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"orders-ordersctl-serve", "orders-ordersctl-consume"}
    for name, monitor in monitors.items():
        _assert_monitor_scrapes_its_service(docs, name, monitor)
    assert len(monitors["orders-ordersctl-consume"]["spec"]["endpoints"]) == 4, "one per worker"


def _assert_monitor_scrapes_its_service(docs: Sequence[dict[str, Any]], name: str, monitor: dict[str, Any]) -> None:
    """A ServiceMonitor selects exactly one Service and scrapes /metrics on each of its ports."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"]
    selected = monitor["spec"]["selector"]["matchLabels"]
    services = [d for d in docs if d["kind"] == "Service" and d["spec"]["selector"] == selected]
    assert len(services) == 1, name
    service_ports = {p["name"] for p in services[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == service_ports, name
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])


def _compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_the_chart_runs_what_docker_compose_runs() -> None:
    # Same commands, same ports, and every setting the chart gives by environment set alike in compose.
    docs = rendered(None)
    compose = _compose_services()
    pairs = {"consume": ("Deployment", "orders-ordersctl-consume"), "serve": ("Deployment", "orders-ordersctl-serve"),
             "migrate": ("Job", "orders-ordersctl-migrate"), "topics": ("Job", "orders-ordersctl-topics")}  # fmt: skip
    for service, (kind, name) in pairs.items():
        container = pod_spec(docs, kind, name)["containers"][0]
        assert container["command"] == compose[service]["command"], service
        env = env_of(container)
        # How the chart delivers settings (a mounted file, a secrets folder); compose passes them directly.
        env = {k: v for k, v in env.items() if k not in ("ORDERS_CONFIG", "ORDERS_SECRETS_DIR")}
        assert env.items() <= {k: str(v) for k, v in compose[service]["environment"].items()}.items(), service
    serve_port = pod_spec(docs, "Deployment", "orders-ordersctl-serve")["containers"][0]["ports"][0]["containerPort"]
    assert compose["serve"]["ports"] == [f"127.0.0.1:{serve_port}:{serve_port}"]
    consume_ports = sorted(
        p["containerPort"] for p in pod_spec(docs, "Deployment", "orders-ordersctl-consume")["containers"][0]["ports"]
    )
    first, last = consume_ports[0], consume_ports[-1]
    assert compose["consume"]["ports"] == [f"127.0.0.1:{first}-{last}:{first}-{last}"]
    grace = pod_spec(docs, "Deployment", "orders-ordersctl-serve")["terminationGracePeriodSeconds"]
    assert compose["serve"]["stop_grace_period"] == f"{grace}s"
    assert "/health/ready" in " ".join(compose["serve"]["healthcheck"]["test"])


def test_readme_shows_helm_install_with_the_values_a_user_sets() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "helm install" in readme and "values-production.yaml" in readme
    for key in ("image.repository", "secrets.existingSecret", "config"):
        assert key in readme, key


def test_the_chart_and_the_production_image_are_ordersctls_version() -> None:
    # The image's tag defaults to the chart's appVersion; production names it: both the version being released.
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert yaml.safe_load(PRODUCTION.read_text())["image"]["tag"] == __version__

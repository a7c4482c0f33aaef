"""The Helm chart (deploy/helm/ordersctl): helm lint and helm template with the default and the production values,
every rendered manifest valid against the Kubernetes schemas (kubernetes-validate, offline), and the chart in
step with docker-compose.yml and the settings model. helm comes from scripts/ensure-helm (`make test` runs it);
without it these tests fail, they never skip."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tomllib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ordersctl.api.serving.server import FINISH_SECONDS
from ordersctl.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ordersctl"
PRODUCTION = CHART / "values-production.yaml"
COMPOSE = ROOT / "docker-compose.yml"
# The oldest Kubernetes the chart states it runs on (Chart.yaml kubeVersion) and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())
# Kinds of CRDs, whose schemas are not Kubernetes': checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


def _helm() -> str:
    explicit = os.environ.get("ORDERS_HELM")
    if explicit:
        return explicit
    version = re.search(r"^VERSION=(\S+)$", (ROOT / "scripts" / "ensure-helm").read_text(), re.MULTILINE)
    assert version, "scripts/ensure-helm names no VERSION"
    found = Path(os.environ.get("ORDERS_HELM_DIR") or ROOT / ".tools" / f"helm-{version[1]}") / "helm"
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing at {found}: run scripts/ensure-helm (make test does)", pytrace=False)
    return str(found)


def _run_helm(*args: str) -> str:
    result = subprocess.run([_helm(), *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@cache
def _rendered(values: Path | None) -> tuple[dict[str, Any], ...]:
    extra = ["-f", str(values)] if values else []
    text = _run_helm("template", "orders", str(CHART), "--namespace", "shop", *extra)
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def _one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


VALUES = pytest.mark.parametrize("values", [None, PRODUCTION], ids=["defaults", "production"])


@VALUES
def test_helm_lint_passes_strict(values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    out = _run_helm("lint", str(CHART), "--strict", *extra)
    assert "0 chart(s) failed" in out, out


@VALUES
def test_every_manifest_is_valid_against_the_kubernetes_schemas_offline(
    values: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _rendered(values)
    assert len(docs) >= 8

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema validation tried the network")

    # The schemas ship in the kubernetes-validate wheel; any connection attempt fails the test.
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {exc.message}") from None


def test_validation_catches_a_wrong_manifest() -> None:
    # The check above is worth something only if the validator refuses what Kubernetes would.
    deployment = dict(_one(_rendered(None), "Deployment", "orders-ordersctl-serve"))
    deployment["spec"] = {**deployment["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    unknown = {**deployment, "spec": {**deployment["spec"], "replicas": 2, "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_defaults_render_the_services_jobs_budgets_and_no_servicemonitor() -> None:
    docs = _rendered(None)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ConfigMap", "orders-ordersctl-config"),
        ("ConfigMap", "orders-ordersctl-hook-config"),
        ("Deployment", "orders-ordersctl-consume"),
        ("Deployment", "orders-ordersctl-serve"),
        ("Job", "orders-ordersctl-migrate"),
        ("Job", "orders-ordersctl-topics"),
        ("PodDisruptionBudget", "orders-ordersctl-consume"),
        ("PodDisruptionBudget", "orders-ordersctl-serve"),
        ("Service", "orders-ordersctl"),
    ]


def test_migrate_then_topics_run_as_hooks_before_install_and_upgrade() -> None:
    docs = _rendered(None)
    migrate, topics = (_one(docs, "Job", f"orders-ordersctl-{name}") for name in ("migrate", "topics"))
    hook_config = _one(docs, "ConfigMap", "orders-ordersctl-hook-config")
    weights = []
    for job in (hook_config, migrate, topics):
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        weights.append(int(notes["helm.sh/hook-weight"]))
    assert weights == sorted(weights) and len(set(weights)) == 3, "config copy, then migrate, then topics"
    assert _container(migrate)["command"] == ["ordersctl", "db", "migrate"]
    assert _container(topics)["command"] == ["ordersctl", "topics", "create", "--dlq", "--partitions", "4"]
    volumes = migrate["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "orders-ordersctl-hook-config"}} in volumes


def _pod_spec(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _one(docs, kind, name)["spec"]["template"]["spec"]
    return spec


@VALUES
def test_every_pod_runs_non_root_on_a_read_only_root_with_tmp_and_resources(values: Path | None) -> None:
    docs = _rendered(values)
    pods = [(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4
    for kind, name in pods:
        pod = _pod_spec(docs, kind, name)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        container = pod["containers"][0]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]


@VALUES
def test_settings_come_from_the_configmap_and_secrets_from_files(values: Path | None) -> None:
    docs = _rendered(values)
    for kind, name in (("Deployment", "orders-ordersctl-consume"), ("Deployment", "orders-ordersctl-serve"),
                       ("Job", "orders-ordersctl-migrate")):  # fmt: skip
        pod = _pod_spec(docs, kind, name)
        env = _env(pod["containers"][0])
        assert env["ORDERS_CONFIG"] == "/etc/ordersctl/ordersctl.toml"
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["config"]["mountPath"] == "/etc/ordersctl/ordersctl.toml" and mounts["config"]["readOnly"]
        assert not any("PASSWORD" in key or "TOKEN" in key for key in env), "secrets only as files"
        if values is None:  # no secret set: nothing mounted
            assert "ORDERS_SECRETS_DIR" not in env and "secrets" not in mounts
        else:
            assert env["ORDERS_SECRETS_DIR"] == "/etc/ordersctl/secrets" == mounts["secrets"]["mountPath"]
            secret = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]
            assert secret["secretName"] == "ordersctl-secrets"


def test_secret_values_become_a_secret_of_files_named_section_dot_field(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text('secrets:\n  values:\n    postgres.password: "s3cret"\n    api.token: "t0ken"\n'
                      '    postgres.read_dsn: "postgresql://reader:r3ad@replica/orders"\n')  # fmt: skip
    _run_helm("lint", str(CHART), "--strict", "-f", str(values))
    text = _run_helm("template", "orders", str(CHART), "-f", str(values))
    docs = [d for d in yaml.safe_load_all(text) if d]
    for name in ("orders-ordersctl-secrets", "orders-ordersctl-hook-secrets"):
        secret = _one(tuple(docs), "Secret", name)
        assert secret["stringData"] == {"postgres.password": "s3cret", "api.token": "t0ken",
                                        "postgres.read_dsn": "postgresql://reader:r3ad@replica/orders"}  # fmt: skip
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")}
    for name, pod in pods.items():
        mounted = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]["secretName"]
        want = "orders-ordersctl-hook-secrets" if name.endswith(("migrate", "topics")) else "orders-ordersctl-secrets"
        assert mounted == want, name
    for doc in docs:
        if doc["kind"] != "Secret":
            shown = yaml.safe_dump(doc)
            assert "s3cret" not in shown and "r3ad" not in shown, (
                f"a secret is in {doc['kind']}/{doc['metadata']['name']}"
            )


@VALUES
def test_the_settings_file_is_one_ordersctl_accepts(values: Path | None, tmp_path: Path) -> None:
    config = _one(_rendered(values), "ConfigMap", "orders-ordersctl-config")["data"]["ordersctl.toml"]
    path = tmp_path / "ordersctl.toml"
    path.write_text(config)
    tomllib.loads(config)
    settings = load_settings(config_file=path)
    assert isinstance(settings, Settings) and settings.log.format == "json"
    assert settings.postgres.dsn.startswith("postgresql://ordersctl@"), "no password in the DSN: it is a secret"
    assert settings.postgres.read_dsn is None or settings.postgres.read_dsn.startswith("postgresql://ordersctl@")


@VALUES
def test_probes_and_a_grace_period_longer_than_the_drain(values: Path | None) -> None:
    docs = _rendered(values)
    serve = _pod_spec(docs, "Deployment", "orders-ordersctl-serve")
    container = serve["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    drain = float(_env(container)["ORDERS_API__DRAIN_SECONDS"])
    assert drain == (15 if values else 10)
    assert serve["terminationGracePeriodSeconds"] > drain + FINISH_SECONDS
    consume = _pod_spec(docs, "Deployment", "orders-ordersctl-consume")["containers"][0]
    assert consume["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert consume["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in consume["ports"]}
    workers = int(consume["command"][consume["command"].index("--workers") + 1])
    health = int(consume["command"][consume["command"].index("--health-port") + 1])
    assert ports.pop("health") == health == 9399, "the supervisor's one port for the probes"
    assert ports["metrics"] == 9400 and len(ports) == workers, "worker i serves on 9400 + i"
    assert _env(consume)["ORDERS_PIPELINE__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's address, on purpose


def test_production_values_scale_and_turn_on_the_servicemonitor() -> None:
    docs = _rendered(PRODUCTION)
    consume = _one(docs, "Deployment", "orders-ordersctl-consume")
    assert consume["spec"]["replicas"] == 3
    assert _container(consume)["command"][:4] == ["ordersctl", "consume", "--workers", "4"]
    serve = _container(_one(docs, "Deployment", "orders-ordersctl-serve"))
    assert serve["command"][-2:] == ["--processes", "2"]
    assert _one(docs, "PodDisruptionBudget", "orders-ordersctl-serve")["spec"]["minAvailable"] == 2
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
    docs = _rendered(None)
    compose = _compose_services()
    pairs = {"consume": ("Deployment", "orders-ordersctl-consume"), "serve": ("Deployment", "orders-ordersctl-serve"),
             "migrate": ("Job", "orders-ordersctl-migrate"), "topics": ("Job", "orders-ordersctl-topics")}  # fmt: skip
    for service, (kind, name) in pairs.items():
        container = _pod_spec(docs, kind, name)["containers"][0]
        assert container["command"] == compose[service]["command"], service
        env = _env(container)
        # How the chart delivers settings (a mounted file, a secrets folder); compose passes them directly.
        env = {k: v for k, v in env.items() if k not in ("ORDERS_CONFIG", "ORDERS_SECRETS_DIR")}
        assert env.items() <= {k: str(v) for k, v in compose[service]["environment"].items()}.items(), service
    serve_port = _pod_spec(docs, "Deployment", "orders-ordersctl-serve")["containers"][0]["ports"][0]["containerPort"]
    assert compose["serve"]["ports"] == [f"127.0.0.1:{serve_port}:{serve_port}"]
    consume_ports = sorted(
        p["containerPort"] for p in _pod_spec(docs, "Deployment", "orders-ordersctl-consume")["containers"][0]["ports"]
    )
    first, last = consume_ports[0], consume_ports[-1]
    assert compose["consume"]["ports"] == [f"127.0.0.1:{first}-{last}:{first}-{last}"]
    grace = _pod_spec(docs, "Deployment", "orders-ordersctl-serve")["terminationGracePeriodSeconds"]
    assert compose["serve"]["stop_grace_period"] == f"{grace}s"
    assert "/health/ready" in " ".join(compose["serve"]["healthcheck"]["test"])


def test_readme_shows_helm_install_with_the_values_a_user_sets() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "helm install" in readme and "values-production.yaml" in readme
    for key in ("image.repository", "secrets.existingSecret", "config"):
        assert key in readme, key

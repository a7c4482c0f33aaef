"""The Helm chart on its own (deploy/helm/ordersctl): helm lint and helm template with the default and the
production values, every rendered manifest valid against the Kubernetes schemas (kubernetes-validate, offline),
the hook Jobs, the pods' security and resources, settings and secrets as files the settings model accepts, and
the probes. The chart against production, docker-compose.yml, the README and the version:
tests/unit/test_helm_in_step.py."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ordersctl.api.serving.server import FINISH_SECONDS
from ordersctl.config import Settings, load_settings
from tests.helm_chart import CHART, VALUES, container_of, env_of, one, pod_spec, rendered, run_helm

# The oldest Kubernetes the chart states it runs on (Chart.yaml kubeVersion) and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())
# Kinds of CRDs, whose schemas are not Kubernetes': checked by hand (tests/unit/test_helm_in_step.py).
CUSTOM_KINDS = {"ServiceMonitor"}


@VALUES
def test_helm_lint_passes_strict(values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    out = run_helm("lint", str(CHART), "--strict", *extra)
    assert "0 chart(s) failed" in out, out


@VALUES
def test_every_manifest_is_valid_against_the_kubernetes_schemas_offline(
    values: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered(values)
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
    deployment = dict(one(rendered(None), "Deployment", "orders-ordersctl-serve"))
    deployment["spec"] = {**deployment["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    unknown = {**deployment, "spec": {**deployment["spec"], "replicas": 2, "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_defaults_render_the_services_jobs_budgets_and_no_servicemonitor() -> None:
    docs = rendered(None)
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
    docs = rendered(None)
    migrate, topics = (one(docs, "Job", f"orders-ordersctl-{name}") for name in ("migrate", "topics"))
    hook_config = one(docs, "ConfigMap", "orders-ordersctl-hook-config")
    weights = []
    for job in (hook_config, migrate, topics):
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        weights.append(int(notes["helm.sh/hook-weight"]))
    assert weights == sorted(weights) and len(set(weights)) == 3, "config copy, then migrate, then topics"
    assert container_of(migrate)["command"] == ["ordersctl", "db", "migrate"]
    assert container_of(topics)["command"] == ["ordersctl", "topics", "create", "--dlq", "--partitions", "4"]
    volumes = migrate["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "orders-ordersctl-hook-config"}} in volumes


@VALUES
def test_every_pod_runs_non_root_on_a_read_only_root_with_tmp_and_resources(values: Path | None) -> None:
    docs = rendered(values)
    pods = [(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4
    for kind, name in pods:
        pod = pod_spec(docs, kind, name)
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
    docs = rendered(values)
    for kind, name in (("Deployment", "orders-ordersctl-consume"), ("Deployment", "orders-ordersctl-serve"),
                       ("Job", "orders-ordersctl-migrate")):  # fmt: skip
        pod = pod_spec(docs, kind, name)
        env = env_of(pod["containers"][0])
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
    run_helm("lint", str(CHART), "--strict", "-f", str(values))
    text = run_helm("template", "orders", str(CHART), "-f", str(values))
    docs = [d for d in yaml.safe_load_all(text) if d]
    for name in ("orders-ordersctl-secrets", "orders-ordersctl-hook-secrets"):
        secret = one(tuple(docs), "Secret", name)
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
    config = one(rendered(values), "ConfigMap", "orders-ordersctl-config")["data"]["ordersctl.toml"]
    path = tmp_path / "ordersctl.toml"
    path.write_text(config)
    tomllib.loads(config)
    settings = load_settings(config_file=path)
    assert isinstance(settings, Settings) and settings.log.format == "json"
    assert settings.postgres.dsn.startswith("postgresql://ordersctl@"), "no password in the DSN: it is a secret"
    assert settings.postgres.read_dsn is None or settings.postgres.read_dsn.startswith("postgresql://ordersctl@")


@VALUES
def test_probes_and_a_grace_period_longer_than_the_drain(values: Path | None) -> None:
    docs = rendered(values)
    serve = pod_spec(docs, "Deployment", "orders-ordersctl-serve")
    container = serve["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    drain = float(env_of(container)["ORDERS_API__DRAIN_SECONDS"])
    assert drain == (15 if values else 10)
    assert serve["terminationGracePeriodSeconds"] > drain + FINISH_SECONDS
    consume = pod_spec(docs, "Deployment", "orders-ordersctl-consume")["containers"][0]
    assert consume["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert consume["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in consume["ports"]}
    workers = int(consume["command"][consume["command"].index("--workers") + 1])
    health = int(consume["command"][consume["command"].index("--health-port") + 1])
    assert ports.pop("health") == health == 9399, "the supervisor's one port for the probes"
    assert ports["metrics"] == 9400 and len(ports) == workers, "worker i serves on 9400 + i"
    assert env_of(consume)["ORDERS_PIPELINE__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's address, on purpose

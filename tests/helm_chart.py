"""The Helm chart (deploy/helm/ordersctl) as helm renders it, for tests/unit/test_helm_chart.py (the chart on its
own) and tests/unit/test_helm_in_step.py (the chart against production, docker-compose.yml, the README and the
version). helm comes from scripts/ensure-helm (`make test` runs it); without it these tests fail, they never
skip."""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

CHART = ROOT / "deploy" / "helm" / "ordersctl"
PRODUCTION = CHART / "values-production.yaml"
# Each test that takes ``values`` runs on the chart's defaults and on the production values.
VALUES = pytest.mark.parametrize("values", [None, PRODUCTION], ids=["defaults", "production"])

Manifests = tuple[dict[str, Any], ...]


def helm() -> str:
    explicit = os.environ.get("ORDERS_HELM")
    if explicit:
        return explicit
    version = re.search(r"^VERSION=(\S+)$", (ROOT / "scripts" / "ensure-helm").read_text(), re.MULTILINE)
    assert version, "scripts/ensure-helm names no VERSION"
    found = Path(os.environ.get("ORDERS_HELM_DIR") or ROOT / ".tools" / f"helm-{version[1]}") / "helm"
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing at {found}: run scripts/ensure-helm (make test does)", pytrace=False)
    return str(found)


def run_helm(*args: str) -> str:
    result = subprocess.run([helm(), *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@cache
def rendered(values: Path | None) -> Manifests:
    """``helm template`` of the chart, with ``values`` or its defaults (once per values file)."""
    extra = ["-f", str(values)] if values else []
    text = run_helm("template", "orders", str(CHART), "--namespace", "shop", *extra)
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def one(docs: Manifests, kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_spec(docs: Manifests, kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, kind, name)["spec"]["template"]["spec"]
    return spec


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}

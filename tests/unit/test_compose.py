"""docker-compose.yml cannot run here (no Docker engine); check its shape instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_has_the_stack_and_the_ordersctl_services() -> None:
    assert set(_services()) == {"postgres", "redis", "kafka", "migrate", "topics", "consume", "serve"}


def test_official_images_and_kraft() -> None:
    s = _services()
    assert s["postgres"]["image"].startswith("postgres:")
    assert s["redis"]["image"].startswith("redis:")
    assert s["kafka"]["image"].startswith("apache/kafka:4.")
    env = s["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(env)


def test_host_ports_match_the_local_stack_defaults() -> None:
    s = _services()
    assert s["postgres"]["ports"] == ["127.0.0.1:54329:5432"]
    assert s["redis"]["ports"] == ["127.0.0.1:63799:6379"]
    assert s["kafka"]["ports"] == ["127.0.0.1:19092:19092"]
    assert "EXTERNAL://127.0.0.1:19092" in s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name in ("postgres", "redis", "kafka", "serve"):
        hc = _services()[name]["healthcheck"]
        assert hc["test"] and hc["interval"] and hc["retries"] >= 10, name


def test_start_order() -> None:
    s = _services()
    assert s["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert s["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for svc in ("consume", "serve"):
        assert s[svc]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert s["consume"]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
    assert s["migrate"]["command"] == ["ordersctl", "db", "migrate"]


def test_consume_serves_its_metrics_beyond_the_container() -> None:
    s = _services()
    env = s["consume"]["environment"]
    # The worker binds 127.0.0.1 by default; published ports reach a container only on 0.0.0.0.
    assert env["ORDERS_PIPELINE__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 (inside the container, on purpose)
    # The override adds to the shared settings, it does not replace them.
    assert {k: v for k, v in env.items() if k != "ORDERS_PIPELINE__METRICS_HOST"} == s["migrate"]["environment"]
    assert "ORDERS_POSTGRES__DSN" in env
    assert s["consume"]["ports"] == ["127.0.0.1:9400-9401:9400-9401"]


def test_postgres_runs_with_the_durable_defaults() -> None:
    # No command line or environment turns off fsync, synchronous_commit or full_page_writes.
    postgres = _services()["postgres"]
    said = " ".join(str(part) for part in postgres.get("command", [])) + " ".join(postgres["environment"])
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert setting not in said.lower()

"""docker-compose.yml cannot run here (no Docker engine); check its shape instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ordersctl.api.serving.server import FINISH_SECONDS
from ordersctl.config import ApiSettings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


CLUSTER_NODES = ("kafka-1", "kafka-2", "kafka-3")


def test_has_the_stack_and_the_ordersctl_services() -> None:
    assert set(_services()) == {"postgres", "redis", "kafka", "migrate", "topics", "consume", "serve", *CLUSTER_NODES}


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
    for name in ("postgres", "redis", "kafka", "serve", *CLUSTER_NODES):
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


def test_consume_serves_its_metrics_and_health_beyond_the_container() -> None:
    s = _services()
    env = s["consume"]["environment"]
    # The worker binds 127.0.0.1 by default; published ports reach a container only on 0.0.0.0.
    assert env["ORDERS_PIPELINE__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 (inside the container, on purpose)
    # The override adds to the shared settings, it does not replace them.
    assert {k: v for k, v in env.items() if k != "ORDERS_PIPELINE__METRICS_HOST"} == s["migrate"]["environment"]
    assert "ORDERS_POSTGRES__DSN" in env
    assert s["consume"]["ports"] == ["127.0.0.1:9399-9401:9399-9401"]  # /livez and /readyz, then 2 workers' metrics
    assert "127.0.0.1:9399/readyz" in " ".join(s["consume"]["healthcheck"]["test"])


def test_postgres_runs_with_the_durable_defaults() -> None:
    # No command line or environment turns off fsync, synchronous_commit or full_page_writes.
    postgres = _services()["postgres"]
    said = " ".join(str(part) for part in postgres.get("command", [])) + " ".join(postgres["environment"])
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert setting not in said.lower()


def test_the_cluster_is_a_profile_of_three_nodes_apart_from_the_default_stack() -> None:
    s = _services()
    assert sorted(name for name, svc in s.items() if "cluster" in svc.get("profiles", [])) == list(CLUSTER_NODES)
    # `docker compose up` without the profile gives the single node, as before.
    assert all("profiles" not in s[name] for name in ("postgres", "redis", "kafka", "migrate", "topics"))


def test_the_cluster_nodes_form_one_kraft_quorum() -> None:
    s = _services()
    envs = [s[name]["environment"] for name in CLUSTER_NODES]
    assert all(s[name]["image"] == "apache/kafka:4.1.1" for name in CLUSTER_NODES)
    assert [env["KAFKA_NODE_ID"] for env in envs] == [1, 2, 3]
    assert {env["KAFKA_PROCESS_ROLES"] for env in envs} == {"broker,controller"}
    assert {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1  # a node formatted with another id would not join
    for name, env in zip(CLUSTER_NODES, envs, strict=True):
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"], name


def test_the_cluster_replicates_three_times_and_needs_two_in_sync() -> None:
    for name in CLUSTER_NODES:
        env = _services()[name]["environment"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3, name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2, name
        for internal in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert env[f"KAFKA_{internal}_REPLICATION_FACTOR"] == 3, (name, internal)
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == env["KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"] == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false", name
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name


def test_the_cluster_host_ports_match_the_local_stack_cluster() -> None:
    for name, port in zip(CLUSTER_NODES, (29092, 29094, 29096), strict=True):
        node = _services()[name]
        assert node["ports"] == [f"127.0.0.1:{port}:{port}"], name
        assert f"EXTERNAL://:{port}" in node["environment"]["KAFKA_LISTENERS"], name
        assert f"EXTERNAL://127.0.0.1:{port}" in node["environment"]["KAFKA_ADVERTISED_LISTENERS"], name


def test_serve_gets_the_time_to_drain_before_a_kill() -> None:
    # serve answers for api.drain_seconds (10) after SIGTERM, then finishes what is in flight (up to 5 s); the
    # compose default of 10 s before SIGKILL would cut the drain short.
    grace = _services()["serve"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > ApiSettings().drain_seconds + FINISH_SECONDS

"""ordersctl's ACLs on the secured stack's Kafka (scripts/stack, ORDERS_STACK_SECURE=1): only what it needs.

Run as the broker's super user over the mTLS listener: ``kafka_acls.py BOOTSTRAP TLS_DIR USER``. Its topics
(read, write, describe, create for ``topics create``); the groups whose names start with ``ordersctl``: its
consumer group and the ones ordersctl derives from it (``ordersctl.observe`` for status, ``ordersctl.dlq-inspect``,
``ordersctl.dlq-replay.<reason>`` for replay's progress) and ``ordersctl-admin`` (topics list); idempotent writes
and describing the cluster; the topic rights and deleting under the prefix ``ordersctl-test-`` that the secured
tests use. Creating an ACL that exists is a no-op, so this runs on every ``up``."""

from __future__ import annotations

import sys

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

TOPICS = ("orders", "orders.events", "orders.dlq")
GROUP = "ordersctl"
TEST_PREFIX = "ordersctl-test-"
TOPIC_OPS = (
    AclOperation.READ,
    AclOperation.WRITE,
    AclOperation.DESCRIBE,
    AclOperation.CREATE,
    AclOperation.DESCRIBE_CONFIGS,
)
GROUP_OPS = (AclOperation.READ, AclOperation.DESCRIBE)
CLUSTER_OPS = (AclOperation.IDEMPOTENT_WRITE, AclOperation.DESCRIBE)


def bindings(principal: str) -> list[AclBinding]:
    def allow(kind: ResourceType, name: str, pattern: ResourcePatternType, op: AclOperation) -> AclBinding:
        return AclBinding(kind, name, pattern, principal, "*", op, AclPermissionType.ALLOW)

    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    found = [allow(ResourceType.TOPIC, t, literal, op) for t in TOPICS for op in TOPIC_OPS]
    found += [allow(ResourceType.GROUP, GROUP, prefixed, op) for op in GROUP_OPS]
    found += [allow(ResourceType.BROKER, "kafka-cluster", literal, op) for op in CLUSTER_OPS]
    found += [allow(ResourceType.TOPIC, TEST_PREFIX, prefixed, op) for op in (*TOPIC_OPS, AclOperation.DELETE)]
    return found


def main(bootstrap: str, tls_dir: str, user: str) -> int:
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "security.protocol": "ssl",
            "ssl.ca.location": f"{tls_dir}/ca.crt",
            "ssl.certificate.location": f"{tls_dir}/broker.crt",
            "ssl.key.location": f"{tls_dir}/broker.key",
            "log_level": 3,
        }
    )
    wanted = bindings(f"User:{user}")
    for future in admin.create_acls(wanted, request_timeout=30).values():
        future.result()
    print(
        f"kafka     ACLs     User:{user}: {len(wanted)} bindings (its topics, groups {GROUP}*, topics {TEST_PREFIX}*)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))

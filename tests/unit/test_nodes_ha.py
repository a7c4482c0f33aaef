"""Which nodes ``status`` asks: each host of a multi-host DSN, with its own port or the shared one."""

from __future__ import annotations

from ordersctl.config import PostgresSettings
from ordersctl.observe.nodes_ha import check_nodes, node_addresses


def test_each_host_of_a_multi_host_dsn_is_a_node() -> None:
    assert node_addresses("postgresql://u:p@10.0.0.1:5433,10.0.0.2:5434/orders?target_session_attrs=read-write") == [
        ("10.0.0.1", "5433"),
        ("10.0.0.2", "5434"),
    ]
    assert node_addresses("host=a,b port=6432 dbname=orders") == [("a", "6432"), ("b", "6432")]


def test_a_single_host_has_no_nodes_to_show_and_nothing_is_asked() -> None:
    assert node_addresses("postgresql://u@db.example.com/orders") == []
    assert node_addresses("postgresql://u@h:notaport:x") == []
    assert check_nodes(PostgresSettings(dsn="postgresql://u@127.0.0.1:1/orders")) == ()

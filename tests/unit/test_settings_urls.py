"""The DSN check's fast path (issue #24): a URL it accepts without libpq's parser is one libpq accepts, and the
check's answers are those of libpq's parser for every DSN tried."""

from __future__ import annotations

import itertools

from psycopg import ProgrammingError, conninfo

from ordersctl.settings_urls import _PLAIN_URL, dsn_problem

USERINFO = ["", "u@", "u:p@", "u:p%40x@", "u:%zz@", "u:%00@", "u:a:b@", "u:p/x@", "%41:%42@", "u:~!$&'()*+,;=@", "@",
            ":@", "u:p#@", "u:p?@"]  # fmt: skip
HOSTS = ["h", "127.0.0.1", "h:5432", "h:0", "h:99999", "h:", "[::1]", "[::1]:5432", "h1:1,h2:2", "h1,h2", "", "h_x"]
PATHS = ["", "/", "/db", "/d%20b", "/d%zz", "/d%00", "/d/e", "/d?x=1", "/d?connect_timeout=5", "/d#f"]
SCHEMES = ["postgresql://", "postgres://", "POSTGRESQL://"]


def _libpq_accepts(dsn: str) -> bool:
    try:
        conninfo.conninfo_to_dict(dsn)
    except ProgrammingError:
        return False
    return True


def test_every_url_on_the_fast_path_is_one_libpq_accepts() -> None:
    fast = 0
    for parts in itertools.product(SCHEMES, USERINFO, HOSTS, PATHS):
        dsn = "".join(parts)
        if _PLAIN_URL.fullmatch(dsn):
            fast += 1
            assert _libpq_accepts(dsn), dsn
            assert dsn_problem(dsn) is None or "port" in (dsn_problem(dsn) or ""), dsn
    assert fast > 100  # the fast path is taken for the common shapes


def test_what_libpq_refuses_is_still_refused() -> None:
    for dsn in ["postgresql://u:%zz@h/db", "postgresql://h/d%00", "POSTGRESQL://h/db", "postgresql://h/db?nosuch=1"]:
        assert not _PLAIN_URL.fullmatch(dsn)
        assert dsn_problem(dsn) is not None, dsn

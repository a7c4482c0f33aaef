"""DSNs and URLs as the settings check them: what is wrong with one (never quoting its password), and one
carrying a password given apart (``postgres.password``, ``redis.password``)."""

from __future__ import annotations

import re
from urllib.parse import quote

from ordersctl import masking
from ordersctl.masking import MASK


def ports_problem(hosts: str) -> str | None:
    """What is wrong with the ports of ``host[:port][,host[:port]...]``, or None."""
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _name, sep, number = port.rpartition(":") if ":" in port else ("", "", "")
        if sep and number and not (number.isdigit() and 0 < int(number) < 65536):
            return f"port {number!r} is not a port number"
    return None


def url_hosts(url: str) -> str:
    """The ``host:port`` part of ``scheme://[userinfo@]hosts[/path][?query]``, found as masking finds it."""
    rest = url.split("://", 1)[1]
    rest = rest[rest.rfind("@") + 1 :] if "@" in rest else rest
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


# A URL that libpq certainly accepts: the exact scheme (libpq's is case-sensitive), plain user and password, hosts
# and a database name (unreserved characters and valid percent-escapes other than %00), numeric ports, no query.
# It needs no parser: importing psycopg (0.14 s of CPU) was most of what `config show` loaded beyond the settings.
# Anything else goes to libpq.
_PCT = r"%(?!00)[0-9A-Fa-f]{2}"
_WORD = rf"(?:[A-Za-z0-9._~!$&'()*+,;=-]|{_PCT})*"
_HOST = r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_PLAIN_URL = re.compile(rf"postgres(?:ql)?://(?:{_WORD}(?::{_WORD})?@)?{_HOST}(?:,{_HOST})*(?:/{_WORD})?")


def dsn_problem(dsn: str) -> str | None:
    """Why libpq would refuse a DSN (URL or key=value), or None; never quotes its password."""
    if not dsn.strip():
        return "it is empty"
    if "://" in dsn:
        scheme = dsn.split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            return f"the scheme {scheme}:// is not postgresql://"
        problem = ports_problem(url_hosts(dsn))
        if problem:
            return problem
        if _PLAIN_URL.fullmatch(dsn):
            return None
    from psycopg import ProgrammingError, conninfo  # only when a DSN is checked: the import takes a while

    try:
        params = conninfo.conninfo_to_dict(dsn)
    except ProgrammingError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "it does not parse"
        for secret in masking.secrets_in_url(dsn):
            text = text.replace(secret, MASK)
        return text.removeprefix('missing "=" after ').strip() or "it does not parse"
    return ports_problem(f"x:{params['port']}") if params.get("port") else None


def _quote_conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_password(url: str, password: str, *, conninfo: bool) -> str:
    """``url`` carrying ``password`` (instead of its own): in the userinfo of a URL, or as ``password=``."""
    if "://" not in url and conninfo:
        without = masking.KV_PASSWORD.sub("", url).strip()
        return f"{without} password={_quote_conninfo(password)}"
    # A password in the query would win over the userinfo's (libpq reads the query last): drop it.
    url = re.sub(r"[?&](?=#|$)", "", re.sub(r"([?&])password=[^&#]*&?", r"\1", url, flags=re.IGNORECASE))
    span = masking.userinfo_span(url)
    scheme_end = url.index("://") + 3
    user = url[scheme_end : span[1]].partition(":")[0] if span else ""
    after = url[span[1] + 1 :] if span else url[scheme_end:]
    return f"{url[:scheme_end]}{user}:{quote(password, safe='')}@{after}"


def redis_url_problem(url: str) -> str | None:
    scheme, sep, _rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss", "unix"):
        return "not a redis://, rediss:// or unix:// URL (or empty, for no Redis)"
    if scheme.lower() == "unix":
        return None
    hosts = url_hosts(url)
    if not hosts or "," in hosts:
        return "one host is needed"
    problem = ports_problem(hosts)
    if problem:
        return problem
    path = re.split(r"[?#]", url.split("://", 1)[1], maxsplit=1)[0]
    database = path[len(path.split("/", 1)[0]) :].strip("/") if "/" in path else ""
    if database and not database.isdigit():
        return f"the database {database!r} is not a number"
    return None

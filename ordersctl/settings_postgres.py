"""PostgreSQL's settings (``[postgres]``): the DSN every process writes and reads through, and an optional read-only
DSN (a replica, a read-only role) that ``serve`` reads orders from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from ordersctl import masking
from ordersctl.masking import mask_url
from ordersctl.settings_urls import dsn_problem, with_password


class PostgresSettings(BaseModel):
    """PostgreSQL connection. ``password``, when set, replaces the DSN's own password (and is the password of
    ``read_dsn`` unless that carries its own)."""

    model_config = ConfigDict(extra="forbid")

    dsn: str = "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders"
    # serve's order reads (GET /orders/{order_uid}, GET /orders, its warm-up) go to this DSN when set: a standby or
    # a read-only role. Writes, readiness and the pipeline view stay on `dsn`, which must take writes.
    read_dsn: str | None = None
    password: SecretStr | None = None
    pool_size: int = Field(default=8, ge=1, le=200)
    connect_timeout: int = Field(default=5, ge=1, le=300)
    # Server-side bounds on every session (milliseconds, 0 = none). A statement or lock wait cut short is a
    # transient failure: retried, never dead-lettered. An idle transaction left open (a stuck client) loses
    # its session, so its row locks cannot outlive it.
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    lock_timeout_ms: int = Field(default=10_000, ge=0)
    idle_in_transaction_session_timeout_ms: int = Field(default=60_000, ge=0)
    # "transaction": connections go through a transaction pooler (PgBouncer pool_mode=transaction), which gives
    # each transaction any server session: no startup options (the timeouts above are set on the role by
    # `db migrate` instead) and no prepared statements. "none": a direct connection or a session pooler.
    pooler: Literal["none", "transaction"] = "none"
    # What pg_stat_activity shows; when not set, each process names itself (ordersctl-serve,
    # ordersctl-consume-w1, ...).
    application_name: str = Field(default="ordersctl", max_length=63)

    @field_validator("dsn", "read_dsn")
    @classmethod
    def _dsn_parses(cls, dsn: str | None, info: ValidationInfo) -> str | None:
        if info.field_name == "read_dsn" and (dsn is None or not dsn.strip()):
            return None  # empty (a chart's blank value, ORDERS_POSTGRES__READ_DSN=): no read DSN
        assert dsn is not None
        problem = dsn_problem(dsn)
        if problem:
            raise ValueError(f"{problem}: {mask_url(dsn)}")
        return dsn

    @model_validator(mode="after")
    def _password_in_the_dsn(self) -> PostgresSettings:
        # Folded into the DSN, so that every connection (pooled, dedicated, in any module) carries it.
        if self.password is not None:
            password = self.password.get_secret_value()
            self.dsn = with_password(self.dsn, password, conninfo=True)
            if self.read_dsn is not None and not masking.secrets_in_url(self.read_dsn):
                self.read_dsn = with_password(self.read_dsn, password, conninfo=True)
        return self

    def for_reads(self) -> PostgresSettings:
        """The settings serve's order reads connect with: ``read_dsn`` as the DSN, every other setting alike (the
        liveness defaults and application_name then apply to it as to ``dsn``); these settings without one."""
        if self.read_dsn is None:
            return self
        return self.model_copy(update={"dsn": self.read_dsn, "read_dsn": None})

"""The short form of `make chaos`, inside the test suite: about 50,000 orders on the 3-broker cluster with every
fault kind at least once, checked by the harness's independent checker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.faults import KINDS
from tests.helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
CLUSTER = {"ORDERS_STACK_KAFKA_NODES": "3"}


def test_short_chaos_run_loses_and_duplicates_nothing() -> None:
    env = os.environ | CLUSTER
    subprocess.run([ROOT / "scripts" / "stack", "up"], env=env, check=True, timeout=300)
    out = ROOT / "test-output" / "chaos-short"
    run = subprocess.run(
        [sys.executable, "-m", "chaos", "run", "--out", str(out), "--seed", "11", "--count", "50000",
         "--per-kind", "1", "--short", "--recreate-db", "--prefix", "chaos-short", "--json",
         "--dsn", "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders_chaos_test"],
        cwd=ROOT, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert run.stdout, run.stderr[-4000:]
    report = json.loads(run.stdout)
    failed = [line for line in report["lines"] if not line["ok"]]
    assert not failed, f"{failed}\n{run.stderr[-3000:]}"
    assert run.returncode == 0
    assert {kind: report["faults"].get(kind, 0) for kind in KINDS} == dict.fromkeys(KINDS, 1)
    assert report["figures"]["stored"] == report["figures"]["valid"] > 45_000
    assert report["timeline"] and Path(report["timeline"]).stat().st_size > 10_000

"""The fuzz suite over the whole loop (issue #26): the seeded corpus, then what Hypothesis draws.

``make test`` runs a few examples with a fixed seed; ``ORDERS_TEST_FUZZ_EXAMPLES=50`` runs more, and
``ORDERS_TEST_FUZZ_SEED=<n>`` draws other ones (README: "Fuzzing the DLQ tools").
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as examples
from hypothesis import strategies as st

from ordersctl.config import Settings
from tests.fuzz.hostile import Hostile, corpus, hostile_messages
from tests.fuzz.loop import run_loop, the_other_commands

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("ORDERS_TEST_FUZZ_EXAMPLES", "3"))
SEED = os.environ.get("ORDERS_TEST_FUZZ_SEED")
# pytest-timeout bounds the whole Hypothesis run, every example in it: the project's 300 s cut 30 examples off at
# about the 12th (~30 s each on a loaded 2-core machine). A hang is still caught, in proportion to the run.
RUN_SECONDS = 300 + 90 * EXAMPLES


def _own_topics(base: Settings) -> Settings:
    """Topics of one example: the DLQ each tool reads holds this example's dead letters only."""
    prefix = f"fz{uuid.uuid4().hex[:10]}"
    names = {"orders_topic": f"{prefix}.orders", "dlq_topic": f"{prefix}.orders.dlq",
             "events_topic": f"{prefix}.orders.events", "group_id": f"{prefix}-group"}  # fmt: skip
    k = base.kafka.model_copy(update=names)
    return base.model_copy(update={"kafka": k})


def test_the_seeded_corpus_goes_round_the_loop(settings: Settings, tmp_path: Path) -> None:
    run_loop(settings, corpus(), tmp_path)
    the_other_commands(settings)


def _fuzz(settings: Settings, tmp_path: Path, messages: list[Hostile]) -> None:
    run_loop(_own_topics(settings), messages, tmp_path)


_given = given(messages=st.lists(hostile_messages(), min_size=1, max_size=12))
_settings = examples(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.data_too_large])  # fmt: skip
test_what_hypothesis_draws_goes_round_the_loop = pytest.mark.timeout(RUN_SECONDS)(_settings(_given(_fuzz)))
if SEED is not None:
    test_what_hypothesis_draws_goes_round_the_loop = seed(int(SEED))(test_what_hypothesis_draws_goes_round_the_loop)

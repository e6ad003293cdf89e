"""Target 4's CPU budget (bench/batch_floor.py) and its lines in the report."""

from __future__ import annotations

import pytest

from bench.batch_floor import batch_floor, opensearch_us_per_email
from bench.markdown import batch_floor_lines

ALONE = {"recipients_per_s": 20_000.0, "fan_out_cpu_us": 30.0, "calls_cpu_us": 25.0,
         "fake_cpu_us": 30.0}


def test_the_budget_is_the_cores_shared_by_the_target_rate():
    floor = batch_floor(ALONE, opensearch_us=50.0, cores=2)
    assert floor["target_recipients_per_s"] == 15_000       # 0.75 x 20,000
    assert floor["budget_us"] == pytest.approx(133.3)       # 2 s of CPU a second / 15,000
    assert floor["floor_us"] == 135.0
    assert floor["left_us"] == pytest.approx(-1.7)           # nothing left: out of reach
    assert batch_floor(ALONE, 50.0, cores=4)["left_us"] == pytest.approx(131.7)


def test_opensearch_cost_leaves_its_jit_compiling_out():
    result = {"n": 10_000, "cpu_s": {"opensearch": 3.0, "kafka": 9.0},
              "jit_cpu_s": {"opensearch": 1.0}}
    assert opensearch_us_per_email(result) == pytest.approx(200.0)
    assert opensearch_us_per_email({"n": 10, "cpu_s": {}}) == 0.0


def test_report_lines_name_every_part_and_what_is_left():
    text = "\n".join(batch_floor_lines(batch_floor(ALONE, 50.0, cores=2)))
    assert "15000 recipients/s" in text and "on 2 cores" in text
    for part in ("fan-out", "rendering and batch calls", "the provider", "OpenSearch"):
        assert part in text
    assert "**-1.7**" in text

"""Issue 12's target 4 as a CPU budget: the end-to-end marketing rate through a batch API
must reach 0.75x of the API's rate alone (``bench.providers.batch_api_alone``). On a machine
of ``cores`` cores that rate leaves ``cores`` CPU-seconds a second to share among its
recipients; the parts of one recipient's path measured alone (the fan-out, rendering and
calls, the fake provider's answer, OpenSearch indexing its delivery event) already spend
most of it before any Kafka record is encoded, read or decoded (docs/performance.md,
"Target 4's budget")."""

from __future__ import annotations

from typing import Any

TARGET_SHARE = 0.75


def opensearch_us_per_email(result: dict[str, Any]) -> float:
    """OpenSearch's CPU in a run, its JIT compiling left out, per email of the run: what
    indexing one delivery event (and the refreshes and merges it causes) costs."""
    cpu = result["cpu_s"].get("opensearch", 0.0) - result.get("jit_cpu_s", {}).get(
        "opensearch", 0.0)
    return 1e6 * cpu / result["n"]


def batch_floor(alone: dict[str, float], opensearch_us: float, cores: int,
                share: float = TARGET_SHARE) -> dict[str, Any]:
    """The CPU per recipient the target rate allows, what the measured parts take of it,
    and what is left for everything else (negative: the target cannot be met here)."""
    rate = share * alone["recipients_per_s"]
    budget = cores * 1e6 / rate
    parts = {"fan-out (commands, tokens), the call alone": alone["fan_out_cpu_us"],
             "rendering and batch calls, the call alone": alone["calls_cpu_us"],
             "the provider (its fake), the call alone": alone["fake_cpu_us"],
             "OpenSearch indexing the delivery event, this run (JIT left out)": opensearch_us}
    floor = sum(parts.values())
    return {"target_recipients_per_s": round(rate), "cores": cores,
            "budget_us": round(budget, 1),
            "parts_us": {name: round(us, 1) for name, us in parts.items()},
            "floor_us": round(floor, 1), "left_us": round(budget - floor, 1)}

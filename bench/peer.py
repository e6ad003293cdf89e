"""The peer stack (BullMQ + Nodemailer, `../shared/peers/bullmq-nodemailer`), run in the same
invocation as flowmail's runs, same N, same sink kind, so every claim is a ratio measured
side by side on the same machine.

The harness folder is copied to a work folder (npm and its results need it writable) and
`npm ci` runs once there; each run is `./run.sh <scenario> <workers>`, which starts its own
redis-server and smtp-sink and appends one JSON line to a results file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from statistics import median
from typing import Any

from bench.sinks import BenchError

NEEDS = {"redis-server": "redis-server", "smtp-sink": "postfix", "npm": "npm", "node": "nodejs"}


def prepare(source: Path, work: Path) -> Path:
    """A writable copy of the harness with its Node packages installed."""
    if not (source / "run.sh").exists():
        raise BenchError(f"--peer {source}: no run.sh there (the BullMQ + Nodemailer harness "
                         "is ../shared/peers/bullmq-nodemailer)")
    missing = [pkg for tool, pkg in NEEDS.items()
               if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        raise BenchError(f"--peer needs {', '.join(missing)}: `make bench` installs them")
    target = work / "peer"
    lock = (source / "package-lock.json").read_bytes()
    if not (target / "package-lock.json").exists() or \
            (target / "package-lock.json").read_bytes() != lock:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules",
                                                                      "results"))
    if not (target / "node_modules").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund"], target, "npm ci")
    return target


def run(peer: Path, scenario: str, n: int, workers: int) -> dict[str, Any]:
    """One peer run; its JSON result."""
    results = peer / "results" / "flowmail-bench.jsonl"
    results.parent.mkdir(exist_ok=True)
    before = len(results.read_text().splitlines()) if results.exists() else 0
    env = {**os.environ, "RESULTS_JSON": str(results), "N": str(n),
           "BACKLOG_MARKETING": str(n), "BACKLOG_CRITICAL": str(max(n // 100, 1)),
           "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin"}
    _run(["./run.sh", scenario, str(workers)], peer, f"peer {scenario} x{workers}", env)
    lines = results.read_text().splitlines()[before:]
    if not lines:
        raise BenchError(f"peer {scenario} x{workers} wrote no result")
    return json.loads(lines[-1])


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures the comparison uses, named like flowmail's."""
    cpu = result["cpu_s"]
    total_cpu = cpu["workers"] + cpu["redis"] + cpu["smtp_sink"] + cpu["producer"]
    sent = result.get("sent") or result.get("expected")
    return {"workers": result["workers"], "emails_per_s": result["emails_per_s"],
            "latency_ms": result["latency_ms"], "cpu_s": cpu,
            "cpu_ms_per_email": round(total_cpu * 1000 / sent, 3) if sent else None,
            "sink_received": result.get("sink_received")}


def compare(ours: dict[str, Any], peers: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios flowmail / peer: throughput against the peer's best configuration, critical
    p99 and CPU per email against the same peer run (lower is better for both)."""
    by_workers: dict[int, list[dict[str, Any]]] = {}
    for peer in peers:
        by_workers.setdefault(peer["workers"], []).append(peer)
    medians = {w: {"emails_per_s": median(r["emails_per_s"] for r in runs),
                   "critical_p99_ms": median(r["latency_ms"]["critical"]["p99"] for r in runs),
                   "cpu_ms_per_email": median(r["cpu_ms_per_email"] for r in runs)}
               for w, runs in by_workers.items()}
    best = max(medians.values(), key=lambda m: m["emails_per_s"])
    one = medians.get(1, best)
    our_cpu = sum(ours["cpu_s"].values()) * 1000 / ours["n"]
    our_p99 = ours["latency_ms"].get("critical", {}).get("p99")
    return {
        "peer": medians,
        "throughput_vs_peer_best": round(ours["emails_per_s"] / best["emails_per_s"], 3),
        "critical_p99_vs_peer": round(our_p99 / one["critical_p99_ms"], 3) if our_p99 else None,
        "cpu_per_email_ms": round(our_cpu, 3),
        "cpu_per_email_vs_peer": round(our_cpu / one["cpu_ms_per_email"], 3),
    }


def _run(argv: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=3600)
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout)[-1500:]}")

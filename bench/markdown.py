"""The benchmark's Markdown report with its two plots (latency per priority, throughput)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plots(result: dict[str, Any], folder: Path) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {}
    figure, axes = plt.subplots(figsize=(7, 4))
    for priority, values in sorted(result.get("latencies_ms", {}).items()):
        if values:
            share = [(i + 1) / len(values) for i in range(len(values))]
            axes.plot(values, share, label=f"{priority} (n={len(values)})")
    axes.set_xscale("log")
    axes.set_xlabel("publish -> provider accepted (ms, log scale)")
    axes.set_ylabel("share of emails")
    axes.set_title(f"Latency per priority: {result['scenario']}, {result['provider']}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    names["latency"] = "latency.png"
    figure.savefig(folder / names["latency"], dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 3.5))
    series = result.get("throughput_per_s", [])
    axes.bar(range(len(series)), series, width=1.0)
    axes.axhline(result["emails_per_s"], color="black", linestyle="--",
                 label=f"mean {result['emails_per_s']:.0f}/s")
    axes.set_xlabel("seconds since first publish")
    axes.set_ylabel("emails accepted per second")
    axes.set_title("Throughput over time")
    axes.legend()
    figure.tight_layout()
    names["throughput"] = "throughput.png"
    figure.savefig(folder / names["throughput"], dpi=110)
    plt.close(figure)
    return names


def markdown(result: dict[str, Any], command: str, images: dict[str, str]) -> str:
    lines = [f"# flowmail benchmark: {result['scenario']}, provider {result['provider']}", "",
             f"Command: `{command}`", "",
             f"Machine: {result['machine']['cpus']} cores ({result['machine']['cpu_model']}), "
             f"{result['machine']['memory_gb']} GiB, Python {result['machine']['python']}; "
             "Kafka and OpenSearch on the same machine.", "",
             "| measure | value |", "|---|---|",
             f"| emails | {result['n']} ({result['by_priority']}) |",
             f"| worker processes | {result['workers']} (one consumer group) |",
             f"| runs (median) | {result.get('repeat', 1)} |",
             f"| emails/s, first publish to last accept | **{result['emails_per_s']}** |",
             f"| emails/s per priority | {result.get('emails_per_s_by_priority', {})} |",
             f"| seconds | {result['seconds']} |",
             f"| sink received / unique / duplicates / lost | {result['sink_received']} / "
             f"{result['unique_received']} / {result['duplicates']} / {result['lost']} |",
             f"| all delivery events searchable after (s since first publish) | "
             f"{result['searchable_after_s']} |",
             *([warm_up_line(result["stack_warm_up"])] if result.get("stack_warm_up") else []),
             *([f"| mean message size at the sink (B; the peer's: about 6,500, its README) | "
                f"{result['message_bytes']} |"] if result.get("message_bytes") else []), "",
             "## Latency, publish to provider accept (ms)", "",
             "| priority | count | p50 | p95 | p99 | max |", "|---|---|---|---|---|---|"]
    for priority, stats in sorted(result["latency_ms"].items()):
        lines.append(f"| {priority} | {stats['count']} | {stats['p50']} | {stats['p95']} | "
                     f"{stats['p99']} | {stats['max']} |")
    jit = result.get("jit_cpu_s", {})
    lines += ["", "## Processes", "",
              "| process | CPU s | of which JIT compiling (JVMs) | peak RSS MB |",
              "|---|---|---|---|"]
    for name, cpu in result["cpu_s"].items():
        lines.append(f"| {name} | {cpu} | {jit.get(name, '')} | "
                     f"{result['peak_rss_mb'].get(name)} |")
    versus = result.get("versus_peer")
    if versus:
        lines += ["", "## Against the peer (BullMQ + Nodemailer), same run, same machine", "",
                  "| measure | flowmail / peer |", "|---|---|",
                  f"| emails/s vs the peer's best configuration | "
                  f"**{versus['throughput_vs_peer_best']}** |",
                  f"| critical p99 vs the peer's one worker (lower is better) | "
                  f"{versus['critical_p99_vs_peer']} |",
                  f"| CPU per email, every process (lower is better) | "
                  f"{versus['cpu_per_email_vs_peer']} ({versus['cpu_per_email_ms']} ms) |",
                  "", "| peer workers | emails/s | critical p99 ms | CPU ms per email |",
                  "|---|---|---|---|"]
        for workers, peer in sorted(versus["peer"].items()):
            lines.append(f"| {workers} | {peer['emails_per_s']} | {peer['critical_p99_ms']} | "
                         f"{peer['cpu_ms_per_email']} |")
    limits = result.get("limits")
    if limits:
        lines += ["", "## Raw limits, same run", "", "| limit | per second | flowmail's share |",
                  "|---|---|---|"]
        if "smtp_sink" in limits:
            sink = limits["smtp_sink"]
            passes = sink.get("passes_per_s")
            best = f", best of {', '.join(map(str, passes))}" if passes and len(passes) > 1 \
                else ""
            lines.append(f"| smtp-source -> smtp-sink ({sink['sessions']} sessions, "
                         f"{sink['size_bytes']} B{best}) | {sink['messages_per_s']} | "
                         f"{limits['fraction_of_smtp_sink']:.1%} |")
        kafka = limits["kafka"]
        lines.append(f"| confluent-kafka consume -> produce ({kafka['size_bytes']} B) | "
                     f"{kafka['passthrough_per_s']} | "
                     f"{limits['fraction_of_kafka_passthrough']:.1%} |")
        lines.append(f"| confluent-kafka produce only | {kafka['produce_per_s']} | |")
        if "batch_api_alone" in limits:
            lines.append(f"| the batch API alone (render + call, no Kafka) | "
                         f"{limits['batch_api_alone']['recipients_per_s']} | "
                         f"{limits['fraction_of_batch_api']:.1%} |")
        if "batch_floor" in limits:
            lines += batch_floor_lines(limits["batch_floor"])
    tracking = result.get("tracking")
    if tracking:
        latency = tracking["latency_ms"]
        lines += ["", "## Open and click tracking, same run (`flowmail webhooks`)", "",
                  "| requests | concurrency | requests/s | p50 ms | p99 ms | events written | "
                  "x flowmail's email rate |", "|---|---|---|---|---|---|---|",
                  f"| {tracking['requests']} | {tracking['concurrency']} | "
                  f"{tracking['requests_per_s']} | {latency['p50']} | {latency['p99']} | "
                  f"{tracking['events_written']} | {tracking['times_email_rate']} |"]
    if result.get("mean_batch_records"):
        lines += ["", f"Mean records per batch, by stage: {result['mean_batch_records']}"]
    lag = result.get("event_loop_lag")
    if lag:
        lines += ["", f"Event-loop lag (histogram bucket bounds, ms): {lag}"]
    for name, top in (result.get("profile_top") or {}).items():
        lines += ["", f"## Profile {name} (py-spy, share of samples)", "", "```", top, "```"]
    lines += ["", f"![latency]({images['latency']})", "",
              f"![throughput]({images['throughput']})", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], command: str) -> Path:
    folder = Path(result["report_dir"])
    images = plots(result, folder)
    path = folder / "report.md"
    path.write_text(markdown(result, command, images))
    return path


def warm_up_line(warm: dict[str, Any]) -> str:
    """The unmeasured runs before the measured ones (bench/e2e.py's _warm_stack)."""
    runs = warm["runs"]
    started = "this invocation started Kafka/OpenSearch" if warm.get("stack_started") else (
        "Kafka/OpenSearch were running")
    shares = ", ".join(f"{run['jit_share']:.0%}" for run in runs)
    return (f"| before the runs ({started}) | {len(runs)} unmeasured run(s) of {warm['emails']} "
            f"emails, until the JVMs spent at most {warm['jit_share_limit']:.0%} of their CPU "
            f"JIT compiling "
            f"(share per run: {shares}; last run {warm['emails_per_s']} emails/s) |")


def batch_floor_lines(floor: dict[str, Any]) -> list[str]:
    """Target 4 as a CPU budget per recipient (bench/batch_floor.py)."""
    lines = ["", f"### Target 4's budget: {floor['target_recipients_per_s']} recipients/s "
             f"(0.75x of the batch API alone) on {floor['cores']} cores", "",
             "| CPU per recipient | µs |", "|---|---|",
             f"| the budget: cores / target rate | {floor['budget_us']} |"]
    lines += [f"| {name} | {us} |" for name, us in floor["parts_us"].items()]
    lines += [f"| left for Kafka (command, ledger, delivery event), decoding, the sink | "
              f"**{floor['left_us']}** |"]
    return lines

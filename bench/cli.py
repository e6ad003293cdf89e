"""``flowmail bench``: the benchmark's command, plugged into the CLI as an entry point
(pyproject.toml: ``flowmail.commands``), so the product CLI does not import the benchmark."""

from __future__ import annotations

import json
import sys

import click

from bench import WARM_JIT_SHARE, WARM_STACK_RUNS_MAX
from flowmail.cli import checked_settings


@click.command()
@click.option("--n", "n", default=20_000, show_default=True,
              help="Emails (the case study's daily mix scaled to N; marketing as campaign "
                   "recipients).")
@click.option("--provider", type=click.Choice(["smtp", "sendgrid", "mailgun"]), default="smtp",
              show_default=True, help="smtp: postfix smtp-sink on a free port (or "
              "--smtp-host/--smtp-port); sendgrid/mailgun: the fake APIs.")
@click.option("--scenario", type=click.Choice(["mix", "backlog"]), default="mix",
              show_default=True, help="backlog: N marketing (a campaign), then N/100 critical "
              "emails (password resets) once the first 1,000 marketing emails arrived.")
@click.option("--workers", default=0, show_default=True,
              help="Worker processes in one group; 0: what `flowmail worker` starts "
                   "(FLOWMAIL_WORKER_PROCESSES, one per CPU core by default).")
@click.option("--repeat", default=1, show_default=True, help="Runs; the report gives medians.")
@click.option("--smtp-host", default=None, help="Send to this SMTP server instead.")
@click.option("--smtp-port", type=int, default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the result here too.")
@click.option("--report-dir", type=click.Path(file_okay=False), default=None,
              help="Report, plots and worker logs (default .flowmail/bench/<time>).")
@click.option("--no-limits", is_flag=True, help="Skip the raw smtp-sink and Kafka limits.")
@click.option("--profile", is_flag=True, help="Sample every worker with py-spy while it runs.")
@click.option("--timeout", "timeout_s", default=900.0, show_default=True)
@click.option("--warm-runs", "warm_runs", default=WARM_STACK_RUNS_MAX, show_default=True,
              help="At most this many unmeasured runs first, ended as soon as Kafka and "
                   f"OpenSearch spent at most {WARM_JIT_SHARE:.0%} of their CPU JIT "
                   "compiling; 0: measure the stack as it is.")
@click.option("--peer", "peer_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Also run the BullMQ + Nodemailer harness in this folder (same N, "
                   "interleaved) and report flowmail/peer ratios (SMTP only).")
@click.option("--tracking", is_flag=True,
              help="Then load open/click tracking (`flowmail webhooks`) and compare its "
                   "requests/s with the email rate.")
def bench(n: int, provider: str, scenario: str, workers: int, repeat: int,
          smtp_host: str | None, smtp_port: int | None, json_path: str | None,
          report_dir: str | None, no_limits: bool, profile: bool, timeout_s: float,
          warm_runs: int, peer_dir: str | None, tracking: bool) -> None:
    """End-to-end benchmark on the local stack (started if needed); see docs/performance.md."""
    from pathlib import Path

    try:
        from bench.e2e import Options, run_bench
        from bench.markdown import write_report
        from bench.sinks import BenchError
    except ModuleNotFoundError as err:
        raise click.ClickException(f"the benchmark needs {err.name}: pip install "
                                   "'flowmail[bench]' (make bench installs it)") from err
    from flowmail.localstack import StackError
    if n < 8 or workers < 0 or repeat < 1 or warm_runs < 0:
        raise click.BadParameter("--n must be >= 8, --workers >= 0, --repeat >= 1 and "
                                 "--warm-runs >= 0")
    if bool(smtp_host) != bool(smtp_port):
        raise click.BadParameter("--smtp-host and --smtp-port go together")
    if peer_dir and (provider != "smtp" or smtp_host):
        raise click.BadParameter("the peer sends to its own smtp-sink: --peer needs "
                                 "--provider smtp and no --smtp-host", param_hint="--peer")
    options = Options(n=n, provider=provider, scenario=scenario, workers=workers,
                      repeat=repeat, smtp_host=smtp_host, smtp_port=smtp_port,
                      timeout_s=timeout_s, limits=not no_limits, profile=profile,
                      report_dir=Path(report_dir) if report_dir else None,
                      peer=Path(peer_dir).resolve() if peer_dir else None,
                      tracking=tracking, warm_runs=warm_runs)
    try:
        result = run_bench(checked_settings(), options)
    except (BenchError, StackError) as err:
        raise click.ClickException(str(err)) from err
    report = write_report(result, "flowmail bench " + " ".join(sys.argv[2:]))
    slim = {k: v for k, v in result.items() if k not in {"latencies_ms", "throughput_per_s"}}
    click.echo(json.dumps(slim, indent=2))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    click.echo(f"report: {report}")

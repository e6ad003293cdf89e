"""The ``flowmail`` command line."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Any

import click

from core.settings import Settings, SettingsError, describe, load_settings
from core.vocab import Category, Priority, SuppressionReason


def checked_settings() -> Any:
    """Settings with their secrets checked (or generated for the local stack)."""
    from core.kafka_config import use_security
    from core.kafka_security import KafkaSecurityError, security_of
    from core.secrets import with_secrets
    try:
        settings = with_secrets(load_settings())
        use_security(security_of(settings))  # checked once; every client of ours gets it
        return settings
    except (SettingsError, KafkaSecurityError) as err:
        raise click.ClickException(str(err)) from err


class _Commands(click.Group):
    """Turns the one failure every Kafka-backed command shares (the broker does not answer)
    into a message that says which setting and which command fix it."""

    def invoke(self, ctx: click.Context) -> Any:
        from confluent_kafka import KafkaException

        from core.kafka_security import KafkaSecurityError
        from streams.startup import StartupTimeout
        try:
            return super().invoke(ctx)
        except (StartupTimeout, KafkaSecurityError) as err:
            raise click.ClickException(str(err)) from err
        except KafkaException as err:
            raise click.ClickException(
                f"Kafka at FLOWMAIL_KAFKA_BOOTSTRAP={checked_settings().kafka_bootstrap} did not "
                f"answer ({err.args[0].str() if err.args else err}); start the local stack "
                "with `flowmail stack up` or point the setting at your cluster") from err


@click.group(cls=_Commands)
def main() -> None:
    """flowmail: event-driven email on Kafka, Faust and OpenSearch."""


@main.group()
def stack() -> None:
    """The local stack: Kafka (KRaft), OpenSearch and an SMTP mail catcher on 127.0.0.1."""


def _local_stack(with_registry: bool = False) -> Any:
    from flowmail.localstack import LocalStack, StackError
    try:
        return LocalStack.from_settings(checked_settings(), with_registry)
    except StackError as err:
        raise click.ClickException(str(err)) from err


@stack.command("up")
@click.option("--with-registry", is_flag=True,
              help="Also build (once) and run a Schema Registry (Apicurio, in memory) and "
                   "import the repo's schemas with their ids.")
def stack_up(with_registry: bool) -> None:
    """Fetch what is missing, start what is not running, wait until all are healthy."""
    from flowmail.localstack import StackError
    from flowmail.schema_import import SchemaImportError
    local = _local_stack(with_registry)
    try:
        local.up()
    except (StackError, SchemaImportError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"kafka      {local.kafka.bootstrap}\nopensearch {local.opensearch.url} "
               f"({local.opensearch.version()})\nsmtp       127.0.0.1:{local.catcher.port} -> "
               f"{local.catcher.outbox}")
    if local.with_registry:
        click.echo(f"registry   {local.registry.url}\n           use it: export "
                   f"FLOWMAIL_SCHEMA_REGISTRY_URL={local.registry.url}")


@stack.command("down")
def stack_down() -> None:
    """Stop the processes flowmail started (by pid file); nothing else."""
    _local_stack().down(log=click.echo)


@stack.command("status")
def stack_status() -> None:
    """Print each service's state; exit 1 unless all are healthy."""
    report = _local_stack().status()
    for name, state in report.items():
        click.echo(f"{name:12} {state}")
    sys.exit(0 if all(s == "healthy" for s in report.values()) else 1)


@main.group()
def schemas() -> None:
    """The Avro contracts and a Schema Registry (docs/contracts.md)."""


@schemas.command("import")
@click.option("--url", default=None, help="Registry API (default FLOWMAIL_SCHEMA_REGISTRY_URL).")
def schemas_import(url: str | None) -> None:
    """Put schemas/registry.json's versions into the registry under their ids; refuse if the
    registry holds them under other ids."""
    from core.avro import SchemaRegistry
    from core.schema_registry import RegistryError
    from core.settings import SCHEMA_DIR
    from flowmail.schema_import import SchemaImportError, import_file_ids
    target = url or checked_settings().schema_registry_url
    if not target:
        raise click.UsageError("no registry: pass --url or set FLOWMAIL_SCHEMA_REGISTRY_URL")
    try:
        result = import_file_ids(target, SchemaRegistry(SCHEMA_DIR / "registry.json"))
    except (SchemaImportError, RegistryError) as err:
        raise click.ClickException(str(err)) from err
    for label in result.imported:
        click.echo(f"imported  {label}")
    click.echo(f"{len(result.imported)} imported, {len(result.present)} already there; "
               "registry-wide compatibility FULL")


@main.group()
def topics() -> None:
    """Topics as configuration (streams/topics.py + FLOWMAIL_* settings)."""


@topics.command("apply")
def topics_apply() -> None:
    """Create missing topics, grow partitions, fix configs. Never shrinks; idempotent."""
    from confluent_kafka import KafkaException

    from streams.topic_admin import TopicAdmin
    from streams.topics import topic_specs
    settings = checked_settings()
    try:
        changes = TopicAdmin(settings.kafka_bootstrap, settings.replication_factor).apply(
            topic_specs(settings), settings.startup_timeout_s)
    except KafkaException as err:
        raise click.ClickException(f"kafka at {settings.kafka_bootstrap}: {err}") from err
    for change in changes:
        click.echo(f"{change.action:9} {change.topic}: {change.detail}")
    if not changes:
        click.echo("all topics up to date")
    if any(c.action == "refuse" for c in changes):
        sys.exit(1)


@topics.command("list")
def topics_list() -> None:
    """Print the declared topics with partitions and cleanup policy."""
    from streams.topics import topic_specs
    for spec in topic_specs(checked_settings()):
        click.echo(f"{spec.name:40} {spec.partitions:3}  {spec.config()['cleanup.policy']:8} "
                   f"{spec.doc}")


@main.command()
@click.argument("event_type")
@click.argument("source", type=click.File("r", encoding="utf-8"))
@click.option("--key", help="Message key (default: the field core/catalogue.py declares).")
def publish(event_type: str, source: Any, key: str | None) -> None:
    """Validate EVENT_TYPE json from SOURCE (a file or -) and publish it; one object or a list."""
    from core.avro import ContractError
    from flowmail.publisher import Publisher, PublishError, default_key, from_json
    settings = checked_settings()
    try:
        document = json.load(source)
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{source.name}: not valid JSON: {err}") from err
    events = document if isinstance(document, list) else [document]
    publisher = Publisher(settings.kafka_bootstrap)
    try:
        schema = publisher.schema(event_type)
        payloads = [publisher.encode(event_type, from_json(schema, event)) for event in events]
    except ContractError as err:
        raise click.ClickException(f"nothing published: {err}") from err
    try:
        for event, payload in zip(events, payloads, strict=True):
            publisher.send_encoded(event_type, payload, key or default_key(event_type, event))
        publisher.flush()
    except PublishError as err:
        raise click.ClickException(
            f"{err} (Kafka at FLOWMAIL_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}; "
            "`flowmail stack up` starts the local one)") from err
    click.echo(f"published {len(events)} {event_type} event(s) to {settings.kafka_bootstrap}")


@main.command()
@click.option("--agents", default="router,sender,sink", show_default=True,
              help="Comma-separated agents to run: router, sender, sink.")
@click.option("--priorities", default="critical,transactional,marketing", show_default=True,
              help="Sender priorities to run (give each its own FLOWMAIL_APP_ID for isolation).")
@click.option("--provider", default=None,
              help="Use only this provider for every priority (default: the FLOWMAIL_PROVIDERS_* "
                   "chains).")
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error", "critical"],
                                case_sensitive=False))
@click.option("--new-group-starts-at", type=click.Choice(["earliest", "latest"]),
              default="earliest", show_default=True,
              help="Where a consumer group with no committed offsets starts. 'latest' keeps a "
                   "new FLOWMAIL_APP_ID from sending again every email still in retention.")
@click.option("--processes", type=click.IntRange(min=0), default=None,
              help="Worker processes, each a member of every consumer group (default "
                   "FLOWMAIL_WORKER_PROCESSES; 0 there: one per CPU core), plus the critical "
                   "lane (FLOWMAIL_CRITICAL_LANE). 1: this process only, as --lane says.")
@click.option("--lane", type=click.Choice(["all", "bulk", "critical"]), default="all",
              show_default=True,
              help="With --processes 1: 'all' runs everything; 'critical' only routes and "
                   "sends security mail; 'bulk' everything else (one deployment each).")
@click.pass_context
def worker(ctx: click.Context, agents: str, priorities: str, provider: str | None,
           loglevel: str, new_group_starts_at: str, processes: int | None, lane: str) -> None:
    """Run the worker: by default one process per CPU core plus the critical lane."""
    from providers.registry import PROVIDERS
    from streams.topic_admin import TopicAdmin
    from streams.topics import topic_specs
    from streams.worker import AGENTS, consumed_topics, run
    try:
        chosen = [Priority(p.strip()) for p in priorities.split(",") if p.strip()]
    except ValueError as err:
        raise click.ClickException(f"--priorities: {err}") from err
    settings = checked_settings()
    chosen_agents = [a.strip() for a in agents.split(",") if a.strip()]
    unknown = set(chosen_agents) - set(AGENTS) or (not chosen_agents and {agents})
    if unknown:
        raise click.BadParameter(f"unknown agent(s) {sorted(unknown)}; choose from "
                                 f"{', '.join(AGENTS)}", param_hint="--agents")
    if provider is not None and provider not in PROVIDERS:
        raise click.BadParameter(f"unknown provider {provider!r}; choose from "
                                 f"{', '.join(PROVIDERS)}", param_hint="--provider")
    topics = consumed_topics(chosen_agents, chosen)
    # A worker that starts before its topics exist subscribes to nothing and never recovers:
    # apply the plan first (idempotent; waits for a broker that is still starting).
    changes = TopicAdmin(settings.kafka_bootstrap, settings.replication_factor).apply(
        topic_specs(settings), settings.startup_timeout_s)
    refused = [c for c in changes if c.action == "refuse"]
    if refused:
        raise click.ClickException("topics differ from the plan in a way flowmail will not "
                                   f"change: {refused[0].topic}: {refused[0].detail}")
    if new_group_starts_at == "latest":  # once, before any process joins
        _position_new_group(settings, topics)
    from flowmail.supervisor import process_count, run_processes
    count = process_count(settings) if processes in (None, 0) else processes
    if count > 1 or (processes in (None, 0) and settings.critical_lane):
        common = [f"--{name.replace('_', '-')}={value}" for name, value in ctx.params.items()
                  if name in {"agents", "priorities", "provider", "loglevel"} and value]
        sys.exit(run_processes(settings, count, common))
    if lane == "critical":
        if Priority.CRITICAL not in chosen:
            raise click.BadParameter("the critical lane sends critical mail only; add "
                                     "'critical' to --priorities", param_hint="--lane")
        from streams import critical_lane
        critical_lane.run(settings, provider, loglevel)
        return
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv; keep ours out of it
    from flowmail.worker_pages import add_pages
    run(settings, chosen_agents, chosen, provider, loglevel, critical_apart=lane == "bulk",
        pages=partial(add_pages, settings=settings))


@main.group()
def report() -> None:
    """Reports for the shops' operators, from the analytics in OpenSearch."""


@report.command("deliverability")
@click.option("--since", default="7d", show_default=True,
              help="Start: 7d, 24h, 30m ago, or an ISO date (UTC).")
@click.option("--until", default="now", show_default=True)
@click.option("--shop", "shop_id", default=None, help="One shop only.")
@click.option("--json", "as_json", is_flag=True, help="The numbers as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as an HTML page with bar plots.")
def report_deliverability(since: str, until: str, shop_id: str | None, as_json: bool,
                          html_path: str | None) -> None:
    """Sent, delivered, bounced, complained, opened and clicked, with rates, per provider,
    recipient domain, email type and campaign variant."""
    from pathlib import Path

    from flowmail.report import ReportError, deliverability, page, text
    try:
        found = deliverability(checked_settings(), since, until, shop_id)
    except ReportError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(found, indent=2) if as_json else text(found))
    if html_path:
        Path(html_path).write_text(page(found), encoding="utf-8")
        click.echo(f"written: {html_path}", err=True)


@report.command("daily")
@click.option("--date", "day", default=None, help="The UTC day (YYYY-MM-DD; default yesterday).")
@click.option("--send", is_flag=True, help="Mail it to the operators through flowmail.")
@click.option("--to", default=None, help="Operators (default: FLOWMAIL_REPORT_EMAILS).")
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write the email's HTML here.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), default=None,
              help="Write its PDF here.")
def report_daily(day: str | None, send: bool, to: str | None, as_json: bool,
                 html_path: str | None, pdf_path: str | None) -> None:
    """The operators' daily report: volume by type, delivery, bounce, open and click rates,
    provider health and cost, campaigns by variant, latencies, the day's anomalies."""
    import datetime as dt
    from pathlib import Path

    import requests

    from flowmail.daily_report import rendered, text
    from processors.operator_events import operators
    from streams.daily_report import gather, publish
    settings = checked_settings()
    try:
        date = (dt.date.fromisoformat(day) if day
                else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    except ValueError as err:
        raise click.BadParameter(f"{day!r} is not YYYY-MM-DD", param_hint="--date") from err
    try:
        figures = gather(settings, date)
    except requests.RequestException as err:
        raise click.ClickException(f"OpenSearch: {type(err).__name__}: {err}") from err
    click.echo(json.dumps(figures, indent=2) if as_json else text(figures))
    if html_path or pdf_path:
        email = rendered(settings, figures)
        if html_path:
            Path(html_path).write_text(email.html, encoding="utf-8")
        if pdf_path:
            Path(pdf_path).write_bytes(email.attachments[0].content)
    if send:
        addresses = operators(to) if to is not None else None
        try:
            event_id = publish(settings, figures, addresses)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        click.echo(f"sent: event {event_id} on ops.daily_report", err=True)


@main.group()
def campaign() -> None:
    """Running campaigns: pause, resume, cancel, and where each one is."""


def _campaign_command(action: str, shop_id: str, campaign_id: str, reason: str | None) -> None:
    from flowmail.campaign_control import command
    from processors.errors import RejectedInput
    try:
        event_id = command(checked_settings(), shop_id, campaign_id, action, reason)
    except (ValueError, RejectedInput) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{action}: event {event_id} on campaign.control (campaign {campaign_id} of "
               f"shop {shop_id})")


for _action, _doc_line in (("pause", "Stop handing out recipients until resumed."),
                           ("resume", "Continue a paused campaign where it stopped."),
                           ("cancel", "Stop for good; what was not handed out is not sent.")):
    campaign.command(_action, help=_doc_line)(
        click.option("--shop", "shop_id", required=True, help="The shop the campaign is of.")(
            click.option("--campaign", "campaign_id", required=True)(
                click.option("--reason", default=None, help="Recorded with the command.")(
                    partial(_campaign_command, _action)))))


@campaign.command("status")
@click.option("--shop", "shop_id", required=True, help="The shop the campaign is of.")
@click.option("--campaign", "campaign_id", required=True)
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
def campaign_status(shop_id: str, campaign_id: str, as_json: bool) -> None:
    """Phase, targeted, handed out, sent, failed, suppressed, per variant, the A/B decision."""
    import requests

    from flowmail.campaign_control import status, text
    try:
        found = status(checked_settings(), shop_id, campaign_id)
    except requests.RequestException as err:
        raise click.ClickException(f"OpenSearch: {type(err).__name__}: {err}") from err
    if found is None:
        raise click.ClickException(f"no campaign {campaign_id!r} of shop {shop_id!r} has run")
    click.echo(json.dumps(found, indent=2) if as_json else text(found))


@main.command()
@click.option("--group", "prefix", default=None,
              help="Consumer groups named this or this-* (default: FLOWMAIL_APP_ID's).")
@click.option("--all-partitions", is_flag=True, help="Every partition, not only lagging ones.")
def lag(prefix: str | None, all_partitions: bool) -> None:
    """Consumer lag per group and partition: end offset minus the group's committed offset."""
    from streams.groups import group_lag
    settings = checked_settings()
    rows = group_lag(settings.kafka_bootstrap, prefix or settings.app_id)
    if not rows:
        click.echo(f"no consumer group {prefix or settings.app_id}[-*] has committed offsets")
        return
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    click.echo(f"{'group':42} {'topic':34} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for row in rows:
        if row.lag or all_partitions:
            click.echo(f"{row.group:42} {row.topic:34} {row.partition:>4} {row.committed:>10} "
                       f"{row.end:>10} {row.lag:>8}")
    for group, total in totals.items():
        click.echo(f"{group:42} {'(all partitions)':34} {'':>4} {'':>10} {'':>10} {total:>8}")


@main.command()
@click.option("--port", type=int, default=None, help="Default: FLOWMAIL_DASHBOARD_PORT.")
def dashboard(port: int | None) -> None:
    """The live dashboard: throughput, latency, providers, lag, alerts and campaigns."""
    from aiohttp import web

    from flowmail.dashboard import Dashboard
    settings = checked_settings()
    port = port or settings.dashboard_port
    click.echo(f"dashboard on http://{settings.dashboard_host}:{port}/", err=True)
    web.run_app(Dashboard(settings, settings.dashboard_refresh_s).app(),
                host=settings.dashboard_host, port=port, print=None)


@main.command()
def webhooks() -> None:
    """Serve provider callbacks (SendGrid, Mailgun, SES via SNS) on FLOWMAIL_WEBHOOK_PORT."""
    from flowmail.webhooks import run
    from streams.topic_admin import TopicAdmin
    from streams.topics import topic_specs
    settings = checked_settings()
    refused = [c for c in TopicAdmin(settings.kafka_bootstrap, settings.replication_factor
                                     ).apply(topic_specs(settings), settings.startup_timeout_s)
               if c.action == "refuse"]
    if refused:
        raise click.ClickException(f"topic {refused[0].topic}: {refused[0].detail}")
    on = [name for name, value in (("sendgrid", settings.sendgrid_webhook_key),
                                   ("mailgun", settings.mailgun_webhook_signing_key),
                                   ("ses", settings.sns_topic_arns)) if value]
    click.echo(f"webhooks on http://{settings.webhook_host}:{settings.webhook_port}"
               f"/webhooks/<provider>; configured: {', '.join(on) or 'none'}")
    run(settings)


def _position_new_group(settings: Settings, topics: list[str]) -> None:
    """A brand-new group starts at the end (the batch stages' groups adopt its offsets)."""
    from streams.groups import group_is_new, start_group_at_end
    if group_is_new(settings.kafka_bootstrap, settings.app_id, topics,
                    settings.startup_timeout_s):
        start_group_at_end(settings.kafka_bootstrap, settings.app_id, topics,
                           settings.startup_timeout_s)
        click.echo(f"new consumer group {settings.app_id}: starting at the end of {topics}")


@main.command()
@click.option("--count", default=16, show_default=True, type=click.IntRange(1, 10_000),
              help="order.placed events to publish.")
def demo(count: int) -> None:
    """Start the stack, apply topics, run a worker, publish orders, show where they went."""
    from flowmail.demo import DemoError, run_demo
    from flowmail.localstack import StackError
    try:
        summary = run_demo(checked_settings(), count)
    except (DemoError, StackError) as err:
        raise click.ClickException(str(err)) from err
    click.echo("\n== flowmail demo ==")
    click.echo(f"emails sent:        {summary['emails_sent']} in {summary['seconds']}s")
    click.echo(f"read them in:       {summary['outbox']}/*.eml")
    click.echo(f"opensearch index:   {summary['index']} "
               f"({summary['documents_for_this_run']} documents from this run, "
               f"{summary['documents_in_index']} in all)")
    click.echo("stop the stack with: .venv/bin/flowmail stack down")


@main.group()
def dlq() -> None:
    """The dead-letter topic email.dlq: look at rejected records and re-publish them."""


@dlq.command("inspect")
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0),
              help="First DLQ offset to show.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--reason", help="Only this reason (e.g. invalid_address).")
@click.option("--source-topic", help="Only records that came from this topic.")
def dlq_inspect(start: int, limit: int, reason: str | None, source_topic: str | None) -> None:
    """One line per dead letter: offset, time, stage, reason, source, size, detail."""
    from flowmail.deadletters import read
    shown = 0
    for letter in read(checked_settings().kafka_bootstrap, start):
        if (reason and letter.header("reason") != reason) or (
                source_topic and letter.header("source_topic") != source_topic):
            continue
        click.echo(letter.summary())
        shown += 1
        if shown >= limit:
            break
    click.echo(f"{shown} dead letter(s)")


@dlq.command("replay")
@click.option("--offset", "offsets", type=click.IntRange(min=0), multiple=True,
              help="DLQ offset (repeatable).")
@click.option("--reason", help="Every dead letter with this reason.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed.")
def dlq_replay(offsets: tuple[int, ...], reason: str | None, dry_run: bool) -> None:
    """Re-publish chosen dead letters to their source topics, after the cause is fixed."""
    from flowmail.deadletters import ReplayRefused, read, replay
    if not offsets and not reason:
        raise click.ClickException("choose records with --offset and/or --reason")
    settings = checked_settings()
    chosen = [letter for letter in read(settings.kafka_bootstrap, min(offsets, default=0))
              if letter.offset in offsets or (reason and letter.header("reason") == reason)]
    missing = set(offsets) - {letter.offset for letter in chosen}
    if missing:
        raise click.ClickException(f"no dead letter at offset(s) {sorted(missing)}")
    for letter in chosen:
        click.echo(letter.summary())
    if dry_run:
        click.echo(f"{len(chosen)} dead letter(s) would be replayed")
        return
    try:
        replayed = replay(settings.kafka_bootstrap, chosen)
    except (ReplayRefused, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"replayed {replayed} dead letter(s)")


@main.command()
@click.argument("email_type", required=False)
@click.option("--list", "list_types", is_flag=True, help="List the email types.")
@click.option("--locale", default="en", show_default=True)
@click.option("--data", type=click.File("r", encoding="utf-8"),
              help="A domain event (JSON) to render instead of the shipped example.")
@click.option("--out", type=click.Path(file_okay=False), help="Write the parts to this folder.")
def preview(email_type: str | None, list_types: bool, locale: str, data: Any,
            out: str | None) -> None:
    """Render an email type in a locale: subject, text part and HTML (or files in --out)."""
    from pathlib import Path

    from core.avro import ContractError
    from core.catalogue import CATALOGUE, EmailType
    from flowmail.preview import render_preview, write_preview
    from processors.errors import RejectedInput
    from processors.rendering import Renderer
    if list_types or not email_type:
        for declared in CATALOGUE:
            click.echo(f"{declared.email_type.value:20} from {declared.topic}")
        return
    try:
        kind = EmailType(email_type)
    except ValueError as err:
        raise click.ClickException(f"unknown email type {email_type!r}; see --list") from err
    try:
        event = json.load(data) if data else None
    except json.JSONDecodeError as err:
        raise click.ClickException(f"--data {data.name}: not valid JSON: {err}") from err
    try:
        rendered = render_preview(Renderer(), kind, locale, event)
    except (ValueError, ContractError, RejectedInput) as err:
        raise click.ClickException(str(err)) from err
    if out:
        try:
            written = write_preview(rendered, Path(out))
        except OSError as err:
            raise click.ClickException(f"--out {out}: cannot write there ({err.strerror})"
                                       ) from err
        for path in written:
            click.echo(f"wrote {path}")
        return
    click.echo(f"Subject: {rendered.subject}\n\n{rendered.text}\n\n{rendered.html}")


@main.command()
@click.argument("address")
@click.option("--reason", type=click.Choice([r.value for r in SuppressionReason]),
              default="manual", show_default=True,
              help="hard_bounce and complaint stop all but security mail for every shop; "
                   "unsubscribe stops --shop's marketing; manual stops what --shop and "
                   "--category say (default: everything but security mail).")
@click.option("--shop", "shop_id", help="The shop (needed for unsubscribe).")
@click.option("--category", type=click.Choice([c.value for c in Category
                                               if c is not Category.SECURITY]),
              help="Only this category (manual suppressions).")
@click.option("--lift", is_flag=True, help="Remove that suppression instead.")
def suppress(address: str, reason: str, shop_id: str | None, category: str | None,
             lift: bool) -> None:
    """Stop (or, with --lift, resume) mail to ADDRESS in a scope; security mail always goes."""
    from flowmail.suppression import SuppressionNotStored, suppress_address
    from processors.errors import RejectedInput
    settings = checked_settings()
    chosen = SuppressionReason(reason)
    if chosen is SuppressionReason.UNSUBSCRIBE and not shop_id:
        raise click.BadParameter("an unsubscribe is from one shop's marketing: give --shop",
                                 param_hint="--shop")
    if category and chosen is not SuppressionReason.MANUAL:
        raise click.BadParameter(f"{reason} has a fixed scope; --category is for manual",
                                 param_hint="--category")
    try:
        key, scope = suppress_address(settings.kafka_bootstrap, address,
                                      settings.pseudonym_secret, None if lift else chosen,
                                      shop_id, Category(category) if category else None)
    except RejectedInput as err:
        raise click.BadParameter(err.detail, param_hint="ADDRESS") from err
    except SuppressionNotStored as err:
        raise click.ClickException(
            f"{err} (Kafka at FLOWMAIL_KAFKA_BOOTSTRAP={settings.kafka_bootstrap})") from err
    click.echo(f"{'lifted' if lift else reason} {scope} for recipient key {key}")


@main.command()
def selfcheck() -> None:
    """Render every email type in every locale and decode every schema example (no stack)."""
    from flowmail.selfcheck import check
    lines = 0
    for line in check():
        click.echo(line)
        lines += 1
    click.echo(f"selfcheck passed: {lines} checks")


@main.group()
def gdpr() -> None:
    """A person's data, for their GDPR requests."""


@gdpr.command("export")
@click.option("--shop", "shop_id", required=True, help="The shop the person is a customer of.")
@click.option("--email", "address", required=True, help="The person's address.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Where to write the JSON (it holds the address: keep it private).")
def gdpr_export(shop_id: str, address: str, out: str) -> None:
    """Everything flowmail holds about one person at one shop, as a JSON file."""
    from flowmail.gdpr import export
    from processors.validation import deliverable_address
    try:
        deliverable_address("email", address)
    except ValueError as err:
        raise click.UsageError(f"--email: {err}") from err
    found = export(checked_settings(), shop_id, address)
    with open(out, "w", encoding="utf-8") as file:
        json.dump(found, file, indent=2, ensure_ascii=False, default=str)
    click.echo(f"wrote {out}: {len(found['profiles'])} profile(s), "
               f"{len(found['consent_history'])} consent decision(s), "
               f"{len(found['emails'])} email(s)")


@gdpr.command("erase")
@click.option("--shop", "shop_id", required=True, help="The shop the person asked.")
@click.option("--email", "address", required=True, help="The person's address.")
@click.option("--requested-by", type=click.Choice(["customer", "operator", "api"]),
              default="operator", show_default=True)
@click.option("--wait", "wait_s", type=float, default=120.0, show_default=True,
              help="Seconds to wait for the worker's receipts.")
def gdpr_erase(shop_id: str, address: str, requested_by: str, wait_s: float) -> None:
    """Erase a person's data at a shop: profile and analytics now, every other copy within
    FLOWMAIL_ERASURE_BOUND_S (README: Erasure); prints the receipts (no personal data)."""
    from flowmail.gdpr import erase, erase_outbox
    from processors.validation import deliverable_address
    try:
        deliverable_address("email", address)
    except ValueError as err:
        raise click.UsageError(f"--email: {err}") from err
    settings = checked_settings()
    receipts = erase(settings, shop_id, address, requested_by, wait_s)
    outbox = erase_outbox(settings, address)
    for receipt in receipts:
        click.echo(f"erasure {receipt['erasure_id']}: {receipt['profiles_deleted']} profile(s) "
                   f"and {receipt['analytics_deleted']} analytics document(s) deleted; every "
                   f"other copy gone by {receipt['complete_by']:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"{outbox} message(s) removed from the local mail catcher's outbox")
    if not receipts:
        raise click.ClickException(f"no receipt within {wait_s:.0f}s: is a worker running? "
                                   "The request is published and will be carried out.")


@main.command("settings")
def settings_cmd() -> None:
    """Print every FLOWMAIL_* variable with its default and meaning."""
    for name, default, doc in describe():
        click.echo(f"{name:32} {default:40} {doc}")


if __name__ == "__main__":
    main()


def _plugged_in() -> None:
    """Commands of the packages on top (``flowmail bench``: bench/cli.py), registered as
    ``flowmail.commands`` entry points, so this CLI never imports them."""
    from importlib.metadata import entry_points
    for point in entry_points(group="flowmail.commands"):
        main.add_command(point.load(), point.name)


_plugged_in()

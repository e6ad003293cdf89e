"""Provider throughput against the local fake APIs (no Kafka): one-by-one transactional
sends and batched marketing sends.

    .venv/bin/python -m bench.providers [--n 2000] [--json out.json]

Starts the SendGrid and Mailgun fakes itself on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time

import psutil

from bench.report import emit
from bench.sinks import FakeApiSink
from flowmail.samples import SAMPLES, campaign_launched, user_created
from processors.bulk import group, render_bulk
from processors.message import build_message
from processors.profiles import profile_from_user_created
from processors.rendering import Renderer
from processors.routing import fan_out_campaign, route
from providers.base import BlockingPool
from providers.mailgun import MailgunProvider
from providers.sendgrid import SendGridProvider

SENDER = ("no-reply@shopflow.example", "Nordlicht Outdoor")


async def transactional(provider, n: int, concurrency: int) -> float:
    now = dt.datetime.now(dt.UTC)
    renderer = Renderer()
    messages = []
    for i in range(n):
        [command] = route("shipment.updated", SAMPLES["shipment.updated"](i, now), 1, 1)
        messages.append(build_message(command, renderer.render(command), "S <s@shop.example>"))
    gate = asyncio.Semaphore(concurrency)

    async def one(message):
        async with gate:
            await provider.send(message)

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    return n / (time.perf_counter() - started)


async def marketing(provider, n: int, fake_pid: int | None = None) -> dict[str, float]:
    """Recipients/s of the calls (the fan-out is not timed), and the CPU each part spent
    per recipient: the fan-out, this process's rendering and calls, the fake's answers."""
    now = dt.datetime.now(dt.UTC)
    profiles = [{**profile_from_user_created({**user_created(i, now), "marketing_opt_in": True}, 0),
                 "email": f"r{i}@example.org", "locale": "de"} for i in range(n)]
    fan_out_began = time.process_time()
    commands, _ = fan_out_campaign(campaign_launched(now=now), "campaign.launched", profiles,
                                   1, 1, b"u")
    fan_out_cpu = time.process_time() - fan_out_began
    renderer = Renderer()
    fake = psutil.Process(fake_pid) if fake_pid else None
    fake_began = sum(fake.cpu_times()[:2]) if fake else 0.0
    began, started = time.process_time(), time.perf_counter()
    for chunk_group in group(commands):
        for start in range(0, len(chunk_group), 1000):
            chunk = chunk_group[start:start + 1000]
            bulk = render_bulk(renderer, chunk, provider.bulk_placeholder)
            await provider.send_bulk(bulk, SENDER)
    seconds, calls_cpu = time.perf_counter() - started, time.process_time() - began
    per_recipient = 1e6 / len(commands)
    return {"recipients_per_s": len(commands) / seconds,
            "fan_out_cpu_us": fan_out_cpu * per_recipient,
            "calls_cpu_us": calls_cpu * per_recipient,
            "fake_cpu_us": ((sum(fake.cpu_times()[:2]) - fake_began) * per_recipient
                            if fake else 0.0)}


async def batch_api_alone(kind: str, n: int) -> dict[str, float]:
    """A campaign rendered and handed to ``kind``'s batch API (its local fake), without
    Kafka: the bound of the end-to-end marketing rate (issue target 4), and what each part
    of it costs in CPU per recipient (``bench.batch_floor``)."""
    fake, pool = FakeApiSink.start(kind), BlockingPool(16)
    try:
        provider = (SendGridProvider(FakeApiSink.API_KEY, fake.url, pool, 10)
                    if kind == "sendgrid" else
                    MailgunProvider(FakeApiSink.API_KEY, FakeApiSink.DOMAIN, fake.url, pool, 10))
        return await marketing(provider, n, fake.pid)
    finally:
        fake.stop()


async def main_async(n: int) -> dict[str, float]:
    fakes = [FakeApiSink.start("sendgrid"), FakeApiSink.start("mailgun")]
    pool = BlockingPool(16)
    try:
        sendgrid = SendGridProvider(FakeApiSink.API_KEY, fakes[0].url, pool, 10)
        mailgun = MailgunProvider(FakeApiSink.API_KEY, FakeApiSink.DOMAIN, fakes[1].url, pool, 10)
        return {
            "transactional_sendgrid_emails_per_s": round(await transactional(sendgrid, n, 16)),
            "transactional_mailgun_emails_per_s": round(await transactional(mailgun, n, 16)),
            "marketing_sendgrid_recipients_per_s": round(
                (await marketing(sendgrid, n * 10))["recipients_per_s"]),
            "marketing_mailgun_recipients_per_s": round(
                (await marketing(mailgun, n * 10))["recipients_per_s"]),
        }
    finally:
        for fake in fakes:
            fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.n))
    emit(result, args.json)


if __name__ == "__main__":
    main()

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


async def marketing(provider, n: int) -> float:
    now = dt.datetime.now(dt.UTC)
    profiles = [{**profile_from_user_created({**user_created(i, now), "marketing_opt_in": True}, 0),
                 "email": f"r{i}@example.org", "locale": "de"} for i in range(n)]
    commands, _ = fan_out_campaign(campaign_launched(now=now), "campaign.launched", profiles,
                                   1, 1, b"u")
    renderer = Renderer()
    started = time.perf_counter()
    for chunk_group in group(commands):
        for start in range(0, len(chunk_group), 1000):
            chunk = chunk_group[start:start + 1000]
            bulk = render_bulk(renderer, chunk, provider.bulk_placeholder)
            await provider.send_bulk(bulk, SENDER)
    return len(commands) / (time.perf_counter() - started)


async def batch_api_alone(kind: str, n: int) -> float:
    """Recipients/s of a campaign rendered and handed to ``kind``'s batch API (its local
    fake), without Kafka: the bound of the end-to-end marketing rate (issue target 4)."""
    fake, pool = FakeApiSink.start(kind), BlockingPool(16)
    try:
        provider = (SendGridProvider(FakeApiSink.API_KEY, fake.url, pool, 10)
                    if kind == "sendgrid" else
                    MailgunProvider(FakeApiSink.API_KEY, FakeApiSink.DOMAIN, fake.url, pool, 10))
        return await marketing(provider, n)
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
            "marketing_sendgrid_recipients_per_s": round(await marketing(sendgrid, n * 10)),
            "marketing_mailgun_recipients_per_s": round(await marketing(mailgun, n * 10)),
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

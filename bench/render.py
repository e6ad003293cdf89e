"""Renders per second per email type on one core: subject + HTML (CSS inlined) + text + PDF.

    .venv/bin/python -m bench.render [--seconds 2] [--json out.json]

Environments and catalogs are warm (built on the first render of each locale), as in a
running worker. Each type is rendered across all eight locales in turn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench.report import emit
from core.catalogue import EmailType
from flowmail.samples import SAMPLES, campaign_launched, user_created
from processors.commands import EmailCommand
from processors.message import build_message
from processors.profiles import profile_from_user_created
from processors.rendering import Renderer
from processors.routing import fan_out_campaign, route


def commands_by_type() -> dict[EmailType, list[EmailCommand]]:
    now = dt.datetime.now(dt.UTC)
    ms = int(now.timestamp() * 1000)
    found: dict[EmailType, list[EmailCommand]] = {}
    for topic, sample in SAMPLES.items():
        for index in range(8):
            for command in route(topic, sample(index, now), ms, ms):
                found.setdefault(command.email_type, []).append(command)
    profiles = [profile_from_user_created({**user_created(i, now), "marketing_opt_in": True}, 0)
                for i in range(8)]
    marketing, _ = fan_out_campaign(campaign_launched(now=now), "campaign.launched", profiles,
                                    ms, ms, b"s")
    found[EmailType.MARKETING_CAMPAIGN] = marketing
    return found


def measure(renderer: Renderer, commands: list[EmailCommand], seconds: float) -> dict:
    for command in commands:  # warm: environments, catalogs, fonts
        renderer.render(command)
    count, sizes = 0, []
    cpu_start, deadline = time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        command = commands[count % len(commands)]
        message = build_message(command, renderer.render(command), "Shop <s@shop.example>")
        if count < len(commands):
            sizes.append(len(message.as_bytes()))
        count += 1
    cpu = time.process_time() - cpu_start
    return {"renders_per_s_per_core": round(count / cpu, 1), "renders": count,
            "message_bytes_avg": round(sum(sizes) / len(sizes)), "with_pdf": bool(
                renderer.render(commands[0]).attachments)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    renderer = Renderer()
    result = {kind.value: measure(renderer, commands, args.seconds)
              for kind, commands in sorted(commands_by_type().items())}
    emit(result, args.json)


if __name__ == "__main__":
    main()

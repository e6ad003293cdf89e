"""A SendGrid v3 ``/v3/mail/send`` stand-in: Bearer auth, the request rules that matter
(from, 1-1,000 personalizations with recipients, subject, content), 202 + X-Message-Id."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from flowmail.fakes.faults import FakeState, control_routes


def problems(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"message": "Bad Request", "field": None}]
    found = []
    if not (body.get("from") or {}).get("email"):
        found.append({"message": "The from email does not contain a valid address.",
                      "field": "from.email"})
    people = body.get("personalizations") or []
    if not 1 <= len(people) <= 1000:
        found.append({"message": "The personalizations field is required and must have at "
                                 "least one personalization, at most 1000.",
                      "field": "personalizations"})
    for index, person in enumerate(people):
        if not person.get("to") or not all(t.get("email") for t in person["to"]):
            found.append({"message": "The to array is required for all personalization objects",
                          "field": f"personalizations.{index}.to"})
        args = person.get("custom_args", {})
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            found.append({"message": "Custom args values must be strings.",
                          "field": f"personalizations.{index}.custom_args"})
        elif len(json.dumps(args)) > 10000:
            found.append({"message": "Custom args must be less than 10000 bytes.",
                          "field": f"personalizations.{index}.custom_args"})
    if not body.get("subject") and not all(p.get("subject") for p in people):
        found.append({"message": "The subject is required.", "field": "subject"})
    content = body.get("content") or []
    if not content or not all(c.get("type") and c.get("value") for c in content):
        found.append({"message": "The content value must be a string at least one character "
                                 "in length.", "field": "content.0.value"})
    return found


def substitute(text: str | None, swap: dict[str, str]) -> str:
    text = text or ""
    for key, value in swap.items():
        text = text.replace(key, value)
    return text


def make_app(api_key: str) -> web.Application:
    state = FakeState()

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response({"errors": [{"message": "The provided authorization grant "
                                      "is invalid, expired, or revoked", "field": None}]},
                                     status=401)
        failure = await state.maybe_fail()
        if failure is not None:
            return failure
        try:
            body = await request.json()
        except ValueError:
            body = None
        found = problems(body)
        if found:
            return web.json_response({"errors": found}, status=400)
        message_id = uuid.uuid4().hex[:22]
        for person in body["personalizations"]:
            swap = person.get("substitutions", {})
            html = next((c["value"] for c in body["content"] if c["type"] == "text/html"), "")
            state.accept({
                "id": message_id, "to": [t["email"] for t in person["to"]],
                "subject": substitute(person.get("subject") or body.get("subject"), swap),
                "headers": {**body.get("headers", {}), **person.get("headers", {})},
                "html": substitute(html, swap),
                "attachments": [a["filename"] for a in body.get("attachments", [])],
                "custom_args": {**body.get("custom_args", {}), **person.get("custom_args", {})},
                "tracking_settings": body.get("tracking_settings", {})})
        return web.Response(status=202, headers={"X-Message-Id": message_id})

    app = web.Application(client_max_size=30 * 1024 * 1024)
    app.add_routes([web.post("/v3/mail/send", send), *control_routes(state)])
    return app

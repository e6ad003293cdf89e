"""A Mailgun ``/v3/<domain>/messages[.mime]`` stand-in: basic auth ``api:<key>``, the
domain, 1-1,000 recipients, a MIME file or from/subject/text; 200 with a Mailgun-style id."""

from __future__ import annotations

import email
import email.policy
import json
import time
import uuid

import aiohttp
from aiohttp import web

from flowmail.fakes.faults import FakeState, control_routes


def make_app(api_key: str, domain: str) -> web.Application:
    state = FakeState()
    expected_auth = aiohttp.BasicAuth("api", api_key).encode()

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected_auth:
            return web.Response(status=401, text="Forbidden")
        if request.match_info["domain"] != domain:
            return web.json_response({"message": f"Domain not found: "
                                      f"{request.match_info['domain']}"}, status=404)
        failure = await state.maybe_fail()
        if failure is not None:
            return failure
        form = await request.post()
        recipients = [r for value in form.getall("to", []) for r in str(value).split(",") if r]
        if not 1 <= len(recipients) <= 1000:
            return web.json_response({"message": "'to' parameter is missing"}, status=400)
        if request.path.endswith(".mime"):
            upload = form.get("message")
            if upload is None or not hasattr(upload, "file"):
                return web.json_response({"message": "'message' parameter is missing"},
                                         status=400)
            parsed = email.message_from_bytes(upload.file.read(), policy=email.policy.default)
            subject, headers = str(parsed["Subject"]), dict(parsed.items())
            attachments = [p.get_filename() for p in parsed.iter_attachments()]
        else:
            if not form.get("from") or not (form.get("text") or form.get("html")):
                return web.json_response({"message": "Need at least one of 'text' or 'html' "
                                          "parameters specified"}, status=400)
            return batch(form, recipients)
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@{domain}>"
        state.accept({"id": message_id, "to": recipients, "subject": subject,
                      "headers": {k: str(v) for k, v in headers.items()},
                      "attachments": attachments,
                      "variables": {k[2:]: str(v) for k, v in form.items() if k.startswith("v:")},
                      "options": {k[2:]: str(v) for k, v in form.items() if k.startswith("o:")}})
        return web.json_response({"id": message_id, "message": "Queued. Thank you."})

    def batch(form, recipients: list[str]) -> web.Response:
        """One message per recipient, %recipient.x% filled from recipient-variables."""
        try:
            variables = json.loads(str(form.get("recipient-variables") or "{}"))
        except ValueError:
            return web.json_response({"message": "recipient-variables is not valid JSON"},
                                     status=400)
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@{domain}>"
        for recipient in recipients:
            values = variables.get(recipient, {})

            def fill(text: str, values: dict = values) -> str:
                for key, value in values.items():
                    text = text.replace(f"%recipient.{key}%", str(value))
                return text

            headers = {k[2:]: fill(str(v)) for k, v in form.items() if k.startswith("h:")}
            state.accept({"id": message_id, "to": [recipient],
                          "subject": fill(str(form.get("subject", ""))),
                          "headers": headers, "html": fill(str(form.get("html", ""))),
                          "attachments": [],
                          "variables": {k[2:]: fill(str(v)) for k, v in form.items()
                                        if k.startswith("v:")},
                          "options": {k[2:]: str(v) for k, v in form.items()
                                      if k.startswith("o:")}})
        return web.json_response({"id": message_id, "message": "Queued. Thank you."})

    app = web.Application(client_max_size=30 * 1024 * 1024)
    app.add_routes([web.post("/v3/{domain}/messages", send),
                    web.post("/v3/{domain}/messages.mime", send), *control_routes(state)])
    return app

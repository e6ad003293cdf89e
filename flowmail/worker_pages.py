"""The worker's pages for people: email previews and the one-click unsubscribe.

They belong to the operator tools (previews) and the suppression tool (unsubscribe), so they
live up here and are handed to the stream layer's worker (streams/worker.py) as ``pages``.
"""

from __future__ import annotations

import asyncio

import faust
from aiohttp import web

from core.catalogue import EmailType
from core.settings import Settings
from core.vocab import SuppressionReason
from flowmail.preview import preview_page, render_preview
from flowmail.suppression import SuppressionNotStored, publish_change
from processors.campaigns import verify_unsubscribe_token
from processors.rendering import Renderer
from processors.suppression import scope_for


def add_pages(app: faust.App, settings: Settings) -> None:
    preview_renderer = Renderer()

    @app.page("/preview/{email_type}/")
    async def preview_view(web_view: faust.web.View, request: faust.web.Request,
                           email_type: str) -> web.Response:
        """Any email type in any locale, with its text part; sample data from the repo."""
        try:
            kind = EmailType(email_type)
            locale = request.query.get("locale", "en")
            rendered = await asyncio.get_running_loop().run_in_executor(
                None, render_preview, preview_renderer, kind, locale)
        except ValueError as err:
            return web_view.text(str(err), status=404)
        return web_view.html(preview_page(rendered, kind, locale))

    @app.page("/preview/{email_type}/html/")
    async def preview_html_view(web_view: faust.web.View, request: faust.web.Request,
                                email_type: str) -> web.Response:
        """The HTML part alone, as a mail client would get it (the preview page frames it)."""
        try:
            kind = EmailType(email_type)
            rendered = await asyncio.get_running_loop().run_in_executor(
                None, render_preview, preview_renderer, kind, request.query.get("locale", "en"))
        except ValueError as err:
            return web_view.text(str(err), status=404)
        return web_view.html(rendered.html)

    unsubscribe_secret = settings.unsubscribe_secret.encode()

    @app.page("/unsubscribe/")
    class Unsubscribe(faust.web.View):
        """RFC 8058 one-click: a POST with a valid token suppresses the recipient key."""

        async def get(self, request: faust.web.Request) -> web.Response:
            if verify_unsubscribe_token(unsubscribe_secret, request.query.get("token", "")):
                return self.html('<form method="post"><button name="List-Unsubscribe" '
                                 'value="One-Click">Unsubscribe</button></form>')
            return self.text("invalid or forged unsubscribe link", status=403)

        async def post(self, request: faust.web.Request) -> web.Response:
            identity = verify_unsubscribe_token(unsubscribe_secret,
                                                request.query.get("token", ""))
            if identity is None:
                return self.text("invalid or forged unsubscribe link", status=403)
            recipient, shop_id = identity
            scope = scope_for(SuppressionReason.UNSUBSCRIBE, shop_id)  # that shop's marketing
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, publish_change, settings.kafka_bootstrap, recipient,
                    SuppressionReason.UNSUBSCRIBE, scope, "unsubscribe_link")
            except SuppressionNotStored:
                return self.text("We could not record your unsubscribe right now; please "
                                 "try again in a minute.", status=503)
            return self.text("You are unsubscribed.")

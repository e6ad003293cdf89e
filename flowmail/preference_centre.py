"""The preference centre, served by ``flowmail webhooks`` (the public service tracked links
already point to): ``/preferences/?token=...`` from every marketing email.

It shows the person's current answer per category at that shop, read from the profiles
changelog (``user.profiles``, where the router keeps consent; followed here like the
suppressions are, holding only (shop, user) -> answers and the shop's name, never an
address), and publishes each change as a consent.changed event, answering only after the
broker has it. Forged links are refused (403), expired ones too (410).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException

from core.avro import SchemaRegistry
from core.catalogue import CONSENT_CHANGED
from core.settings import Settings
from processors import consent, preferences
from processors.profiles import profile_key
from streams.acked_producer import AckedProducer
from streams.changelog_store import SuppressionView
from streams.serde import serde
from streams.topics import PROFILES

log = logging.getLogger(__name__)


def _answers(value: bytes | None) -> dict[str, Any] | None:
    """A profile changelog value -> what the page needs of it (None: a tombstone)."""
    if value is None:
        return None
    profile = json.loads(value)
    return {"categories": consent.categories(profile),
            "shop_name": profile.get("shop_name") or profile.get("shop_id")}


class PreferenceCentre:
    def __init__(self, settings: Settings, producer: AckedProducer,
                 schemas: SchemaRegistry) -> None:
        self.settings, self.producer = settings, producer
        self.secret = settings.unsubscribe_secret.encode()
        self.events = serde(settings, schemas, CONSENT_CHANGED.topic)
        self.view = SuppressionView(settings.kafka_bootstrap, PROFILES,
                                    merge=lambda _old, new: new, parse=_answers,
                                    label="preference centre")
        self.ready = False

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/preferences/", self.show), web.post("/preferences/", self.change)]

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.view.start)
        self.ready = True

    def stop(self) -> None:
        self.view.close()

    def _person(self, request: web.Request) -> tuple[str, str, dict[str, Any]]:
        """(user, shop, their answers) for an authentic, unexpired link."""
        try:
            user_id, shop_id = preferences.verify(self.secret, request.query.get("token", ""),
                                                  time.time())
        except preferences.TokenRefused as refused:
            if refused.reason == "expired":
                raise web.HTTPGone(text="This link has expired: use the one in a newer email "
                                        "from the shop.") from None
            raise web.HTTPForbidden(text="This link is not valid.") from None
        if not self.ready:
            raise web.HTTPServiceUnavailable(text="Starting up; try again in a minute.")
        self.view.catch_up()
        held = self.view.get(json.dumps(profile_key(shop_id, user_id)))
        return user_id, shop_id, held or {
            "categories": consent.categories({}), "shop_name": shop_id}

    async def show(self, request: web.Request) -> web.Response:
        _user, _shop, held = self._person(request)
        return _html(preferences.page(held["shop_name"], held["categories"],
                                      request.query["token"]))

    async def change(self, request: web.Request) -> web.Response:
        user_id, shop_id, held = self._person(request)
        form = {k: str(v) for k, v in (await request.post()).items()}
        wanted = preferences.wanted_from_form(form)
        events = preferences.changes(user_id, shop_id, held["categories"], wanted,
                                     dt.datetime.now(dt.UTC))
        if events:
            try:
                await self.producer.send([(CONSENT_CHANGED.topic, user_id.encode(),
                                           self.events.encode(e), None) for e in events])
            except KafkaException:  # the broker refused: nothing was recorded
                log.exception("preference centre: consent changes not stored")
                raise web.HTTPServiceUnavailable(
                    text="We could not save your choices right now; please try again.") from None
        log.info("preference centre: %d consent change(s) recorded", len(events))
        categories = {**held["categories"], **wanted}
        saved = ("You are unsubscribed from all marketing." if form.get("action") ==
                 "unsubscribe_all" else "Your choices are saved.")
        return _html(preferences.page(held["shop_name"], categories, request.query["token"],
                                      saved))


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

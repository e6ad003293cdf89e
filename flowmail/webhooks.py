"""``flowmail webhooks``: the HTTP service providers call back (SendGrid, Mailgun, SES via SNS),
and the one tracked links and pixels point to (``/t/c/...``, ``/t/o/...``), which also serves
the preference centre (``/preferences/``, flowmail/preference_centre.py).

aiohttp, because the worker's web endpoints and the provider fakes already use it (no second
framework), it is asyncio-native like the Kafka producer's acknowledgements it awaits, and it
bounds request bodies itself (``client_max_size``: 413 before a byte is parsed).

A request is accepted only when its signature verifies (processors/webhook_signatures.py);
its events become delivery events on ``email.delivery`` and, for hard bounces, complaints and
unsubscribes, suppression changes on ``email.suppressions``. The answer is 200 only after the
broker acknowledged every record, so a provider retries whatever was not stored; ids are
deterministic (processors/feedback.py), so its retries count once. A verified request whose
content cannot be read goes to the dead-letter topic with its reason and source (400);
forged, replayed, stale and oversized ones are refused and publish nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import Counter

from core.avro import SchemaRegistry, registry
from core.settings import Settings
from core.vocab import DeliveryStatus, RejectReason
from flowmail.preference_centre import PreferenceCentre
from processors.commands import DeliveryEvent
from processors.errors import RejectedInput
from processors.feedback import (
    FeedbackError,
    ProviderEvent,
    mailgun_events,
    sendgrid_events,
    ses_events,
    suppression_change,
    to_delivery_event,
)
from processors.keys import recipient_key
from processors.tracking import TokenError, classify_agent, tracking_event, verify
from processors.validation import deliverable_address
from processors.webhook_signatures import (
    SignatureError,
    sns_cert_url_allowed,
    sns_url_allowed,
    verify_mailgun,
    verify_sendgrid,
    verify_sns,
)
from streams.acked_producer import AckedProducer
from streams.batch_io import SourceRecord
from streams.dlq import DeadLetters
from streams.seen_tokens import SeenTokens, token_key
from streams.serde import Serde, serde
from streams.topics import DELIVERY, DLQ, SEEN_TOKENS, SUPPRESSIONS

log = logging.getLogger(__name__)

REQUESTS = Counter("flowmail_webhook_requests_total", "Webhook requests by provider and outcome",
                   ["provider", "outcome"])
TRACKED = Counter("flowmail_tracking_total", "Tracking requests by kind and who made them "
                  "(human, prefetch, scanner) or why refused", ["kind", "agent"])
# a transparent 1x1 GIF
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000"
                      "010001000002024401003b")
EVENTS = Counter("flowmail_webhook_events_total", "Provider events published, by status",
                 ["provider", "status"])
MAX_CERTIFICATES = 64


class Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


class FeedbackPublisher:
    """Provider events -> delivery events and suppression changes, written as one
    acknowledged batch with any extra record (a webhook token)."""

    def __init__(self, producer: AckedProducer, deliveries: Serde, key_secret: bytes) -> None:
        self.producer, self.deliveries, self.key_secret = producer, deliveries, key_secret

    def delivery_record(self, delivery: DeliveryEvent) -> tuple[str, bytes, bytes, None]:
        """Keyed by the email's idempotency key (its other delivery events' partition)."""
        return (DELIVERY, (delivery.idempotency_key or delivery.recipient_key).encode(),
                self.deliveries.encode(delivery),
                None)

    def records(self, events: list[ProviderEvent]) -> list[tuple[str, bytes | None, bytes,
                                                                  None]]:
        records: list[tuple[str, bytes | None, bytes, None]] = []
        for event in events:
            deliverable_address("recipient", event.recipient)  # RejectedInput: not an address
            records.append(self.delivery_record(to_delivery_event(event, self.key_secret)))
            value = suppression_change(event)
            if value is not None:
                records.append((SUPPRESSIONS,
                                recipient_key(event.recipient, self.key_secret).encode(),
                                json.dumps(value).encode(), None))
        return records


class WebhookService:
    def __init__(self, settings: Settings, schemas: SchemaRegistry | None = None) -> None:
        self.settings = settings
        self.producer = AckedProducer(settings.kafka_bootstrap)
        self.feedback = FeedbackPublisher(
            self.producer, serde(settings, schemas or registry(), DELIVERY),
            settings.pseudonym_secret.encode())
        self.dead = DeadLetters(self._send_dead_letter, settings.max_payload_bytes)
        self.tokens = SeenTokens(settings.kafka_bootstrap, SEEN_TOKENS,
                                 settings.webhook_tolerance_s)
        self._in_flight: set[bytes] = set()
        self._certificates: dict[str, bytes] = {}
        self._topics = {t.strip() for t in settings.sns_topic_arns.split(",") if t.strip()}
        self._http: aiohttp.ClientSession | None = None
        self._tracking_keys = [k.strip().encode() for k in settings.tracking_secret.split(",")
                               if k.strip()]
        self.preferences = PreferenceCentre(settings, self.producer, schemas or registry())

    async def _send_dead_letter(self, key: bytes | None, value: bytes | None,
                                headers: list[tuple[str, bytes]]) -> None:
        await self.producer.send([(DLQ, key, value, headers)])

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.webhook_max_body_bytes)
        app.add_routes([web.post("/webhooks/sendgrid", self.sendgrid),
                        web.post("/webhooks/mailgun", self.mailgun),
                        web.post("/webhooks/ses", self.ses),
                        web.get("/t/o/{context}/{recipient}.gif", self.opened),
                        web.get("/t/c/{link}/{recipient}", self.clicked),
                        web.get("/ready", self.ready), *self.preferences.routes()])
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        context = ssl.create_default_context(cafile=self.settings.sns_ca_file or None)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            timeout=aiohttp.ClientTimeout(total=10))
        await asyncio.get_running_loop().run_in_executor(None, self.tokens.start)
        await self.preferences.start()

    async def _stop(self, _app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()
        self.tokens.close()
        self.preferences.stop()
        self.producer.close()

    async def ready(self, _request: web.Request) -> web.Response:
        return web.json_response({"ready": True, "seen_tokens": self.tokens.count()})

    # -- the three providers -------------------------------------------------------------

    async def sendgrid(self, request: web.Request) -> web.Response:
        async def handle(body: bytes) -> list[ProviderEvent]:
            key = self.settings.sendgrid_webhook_key
            if not key:
                raise Refused(404, "SendGrid webhooks are not configured")
            verify_sendgrid(key, request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
                            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
                            body, time.time(), self.settings.webhook_tolerance_s)
            return sendgrid_events(_json(body))
        return await self._serve("sendgrid", request, handle)

    async def mailgun(self, request: web.Request) -> web.Response:
        token_record: list[bytes] = []

        async def handle(body: bytes) -> list[ProviderEvent]:
            signing_key = self.settings.mailgun_webhook_signing_key
            if not signing_key:
                raise Refused(404, "Mailgun webhooks are not configured")
            payload = _signed_object(body)
            token = verify_mailgun(signing_key, payload.get("signature"), time.time(),
                                   self.settings.webhook_tolerance_s)
            key = token_key("mailgun", token)
            if key in self._in_flight or self.tokens.seen(key):
                raise Refused(406, "token already used: a replay")  # 406: Mailgun stops
            self._in_flight.add(key)
            token_record.append(key)
            return mailgun_events(payload)

        try:
            return await self._serve("mailgun", request, handle, token_record)
        finally:
            for key in token_record:
                self._in_flight.discard(key)

    async def ses(self, request: web.Request) -> web.Response:
        async def handle(body: bytes) -> list[ProviderEvent]:
            if not self._topics:
                raise Refused(404, "SES (SNS) webhooks are not configured")
            message = _signed_object(body)
            if message.get("TopicArn") not in self._topics:
                raise Refused(403, "SNS topic is not one of FLOWMAIL_SNS_TOPIC_ARNS")
            kind = request.headers.get("x-amz-sns-message-type")
            if kind and kind != message.get("Type"):
                raise SignatureError("x-amz-sns-message-type differs from the message's Type")
            verify_sns(message, await self._certificate(str(message.get("SigningCertURL", ""))))
            if message["Type"] == "SubscriptionConfirmation":
                await self._confirm(str(message.get("SubscribeURL", "")))
                return []
            if message["Type"] != "Notification":
                return []
            return ses_events(_json(str(message.get("Message", "")).encode()),
                              str(message["MessageId"]))
        return await self._serve("ses", request, handle)

    # -- open and click tracking (processors/tracking.py) --------------------------------

    def _verified(self, request: web.Request, kind: str, *names: str
                  ) -> list[dict[str, Any]] | None:
        """The payloads of the path's ids, or None (counted) when one is not ours."""
        try:
            return [verify(self._tracking_keys, request.match_info[n]) for n in names]
        except TokenError:
            TRACKED.labels(kind, "forged").inc()
            return None

    async def opened(self, request: web.Request) -> web.Response:
        """The pixel: the image for a genuine id (and an event), 404 for any other."""
        found = self._verified(request, "open", "context", "recipient")
        if found is None:
            return web.Response(status=404, text="not found")
        agent = classify_agent(request.headers.get("User-Agent", ""), request.method)
        await self._track(DeliveryStatus.OPENED, found[0], found[1], agent, None)
        return web.Response(body=PIXEL, content_type="image/gif",
                            headers={"Cache-Control": "no-store, private"})

    async def clicked(self, request: web.Request) -> web.Response:
        """A link: the redirect goes only to the URL the link's own token signed."""
        found = self._verified(request, "click", "link", "recipient")
        url = str(found[0].get("u", "")) if found else ""
        if found is None or not url.startswith(("https://", "http://")):
            return web.Response(status=404, text="not found")
        agent = classify_agent(request.headers.get("User-Agent", ""), request.method)
        await self._track(DeliveryStatus.CLICKED, found[0], found[1], agent, url)
        raise web.HTTPFound(url, headers={"Cache-Control": "no-store, private",
                                          "Referrer-Policy": "no-referrer"})

    async def _track(self, status: DeliveryStatus, context: dict[str, Any],
                     recipient: dict[str, Any], agent: str, url: str | None) -> None:
        """Written before the answer (at least once); a broker that does not take it costs
        the event, never the recipient's redirect."""
        event = tracking_event(status, context, recipient, agent, int(time.time() * 1000),
                               f"{time.monotonic_ns()}", url)
        try:
            await self.producer.send([self.feedback.delivery_record(event)])
        except Exception as err:  # noqa: BLE001 - the redirect matters more than the count
            TRACKED.labels(status.value, "not_stored").inc()
            log.error("tracking event not stored (%s)", type(err).__name__)
            return
        TRACKED.labels(status.value, agent).inc()

    # -- shared ------------------------------------------------------------------------------

    async def _serve(self, provider: str, request: web.Request, handle: Any,
                     token_record: list[bytes] | None = None) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            REQUESTS.labels(provider, "too_large").inc()
            return web.json_response({"error": "request too large"}, status=413)
        try:
            events = await handle(body)
            records = self.feedback.records(events)
        except Refused as refused:
            REQUESTS.labels(provider, f"refused_{refused.status}").inc()
            return web.json_response({"error": refused.why}, status=refused.status)
        except SignatureError as err:
            REQUESTS.labels(provider, "unverified").inc()
            log.warning("%s webhook refused: %s", provider, err)
            return web.json_response({"error": f"not verified: {err}"}, status=401)
        except (FeedbackError, RejectedInput) as err:
            REQUESTS.labels(provider, "unreadable").inc()
            await self.dead.reject(_source(provider, body), _rejected(err), stage="webhooks")
            return web.json_response({"error": f"verified but unreadable: {err}"}, status=400)
        if token_record:
            records.append((SEEN_TOKENS, token_record[0], str(int(time.time())).encode(), None))
        try:
            await self.producer.send(records)
        except Exception as err:  # noqa: BLE001 - not stored: the provider must retry
            REQUESTS.labels(provider, "not_stored").inc()
            log.error("%s webhook not stored (%s); answering 503", provider, type(err).__name__)
            return web.json_response({"error": "not stored, retry"}, status=503)
        for key in token_record or []:
            self.tokens.remember(key)
        for event in events:
            EVENTS.labels(provider, event.status.value).inc()
        REQUESTS.labels(provider, "accepted").inc()
        return web.json_response({"accepted": len(events)})

    async def _certificate(self, url: str) -> bytes:
        """The SNS signing certificate, fetched over HTTPS from an allowed host and kept."""
        if not sns_cert_url_allowed(url, self.settings.sns_cert_host):
            raise SignatureError("SigningCertURL is not an HTTPS .pem on an allowed SNS host")
        if url not in self._certificates:
            assert self._http is not None
            try:
                async with self._http.get(url, allow_redirects=False) as answer:
                    if answer.status != 200:
                        raise SignatureError(f"signing certificate: HTTP {answer.status}")
                    pem = await answer.content.read(64 * 1024)
            except aiohttp.ClientError as err:
                raise Refused(503, f"signing certificate unreachable: {err}") from err
            if len(self._certificates) >= MAX_CERTIFICATES:
                self._certificates.clear()
            self._certificates[url] = pem
        return self._certificates[url]

    async def _confirm(self, url: str) -> None:
        """A verified SubscriptionConfirmation: visit SubscribeURL (an SNS host only)."""
        if not sns_url_allowed(url, self.settings.sns_cert_host):
            raise SignatureError("SubscribeURL is not HTTPS on an allowed SNS host")
        assert self._http is not None
        try:
            async with self._http.get(url, allow_redirects=False) as answer:
                if answer.status != 200:
                    raise Refused(503, f"subscription not confirmed: HTTP {answer.status}")
        except aiohttp.ClientError as err:
            raise Refused(503, f"subscription not confirmed: {err}") from err
        log.info("SNS subscription confirmed")


def _signed_object(body: bytes) -> dict[str, Any]:
    """A body whose signature is inside it: unreadable means unverifiable (401)."""
    try:
        found = json.loads(body)
    except ValueError as err:
        raise SignatureError("body is not JSON: no signature to check") from err
    if not isinstance(found, dict):
        raise SignatureError("body is not a JSON object: no signature to check")
    return found


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as err:
        raise RejectedInput(RejectReason.UNDECODABLE, f"body is not JSON: {err}") from err


def _source(provider: str, body: bytes) -> SourceRecord:
    return SourceRecord(f"webhook:{provider}", -1, -1, int(time.time() * 1000), None, body)


def _rejected(err: Exception) -> RejectedInput:
    if isinstance(err, RejectedInput):
        return err
    return RejectedInput(RejectReason.SCHEMA_MISMATCH, str(err)[:300])


def run(settings: Settings) -> None:
    web.run_app(WebhookService(settings).app(), host=settings.webhook_host,
                port=settings.webhook_port, print=None, access_log=None)

"""Each provider against its fake API (moto for SES): success, and every failure class."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy

import boto3
import pytest

from flowmail.samples import SAMPLES
from processors.message import build_message
from processors.rendering import Renderer
from processors.routing import route
from providers.base import BlockingPool, ProviderError
from providers.mailgun import MailgunProvider
from providers.sendgrid import SendGridProvider
from providers.ses import SesProvider
from tests.fake_apis import MAILGUN_DOMAIN, MAILGUN_KEY, SENDGRID_KEY

POOL = BlockingPool(4)
RENDERER = Renderer()
SENDER = "Nordlicht Outdoor <no-reply@shopflow.example>"


def message(topic="invoice.issued", index=1):
    now = dt.datetime.now(dt.UTC)
    [command] = route(topic, SAMPLES[topic](index, now), 1, 1)
    return build_message(command, RENDERER.render(command), SENDER)


@pytest.fixture
def apis(fake_apis):
    fake_apis.reset()
    yield fake_apis
    fake_apis.primary_down()  # the integration worker's default, should it still run


def sendgrid(apis, key=SENDGRID_KEY, timeout=5.0):
    return SendGridProvider(key, apis.sendgrid_url, POOL, timeout)


def mailgun(apis, key=MAILGUN_KEY, timeout=5.0):
    return MailgunProvider(key, MAILGUN_DOMAIN, apis.mailgun_url, POOL, timeout)


@pytest.fixture(params=["sendgrid", "mailgun"])
def http_provider(request, apis):
    factory = sendgrid if request.param == "sendgrid" else mailgun
    url = apis.sendgrid_url if request.param == "sendgrid" else apis.mailgun_url
    return request.param, factory, url


async def test_send_keeps_recipient_subject_and_attachment(http_provider, apis):
    name, factory, url = http_provider
    mail = message()
    result = await factory(apis).send(mail)
    assert result.provider == name and result.provider_message_id
    [accepted] = apis.accepted(url)
    assert accepted["to"] == [mail.recipient[0]]
    assert accepted["subject"] == mail.subject
    assert accepted["attachments"] == ["invoice-INV-2026-00001.pdf"]
    assert accepted["headers"]["X-Flowmail-Idempotency-Key"] == mail.idempotency_key


@pytest.mark.parametrize(("status", "transient", "provider_fault"), [
    (500, True, True), (503, True, True), (429, True, True), (400, False, False)])
async def test_http_failures_are_classified(http_provider, apis, status, transient,
                                            provider_fault):
    _, factory, url = http_provider
    apis.faults(url, status=status, count=1, retry_after=7 if status == 429 else None)
    with pytest.raises(ProviderError) as err:
        await factory(apis).send(message())
    assert (err.value.transient, err.value.provider_fault) == (transient, provider_fault)
    if status == 429:
        assert err.value.retry_after_s == 7.0
    await factory(apis).send(message())  # count=1: the next call succeeds


async def test_wrong_key_is_a_provider_fault(http_provider, apis):
    _, factory, _ = http_provider
    with pytest.raises(ProviderError) as err:
        await factory(apis, key="wrong").send(message())
    assert err.value.status == 401 and err.value.transient and err.value.provider_fault


async def test_slow_answer_times_out_as_transient(http_provider, apis):
    _, factory, url = http_provider
    apis.faults(url, delay_s=3, count=-1)
    with pytest.raises(ProviderError) as err:
        await factory(apis, timeout=0.5).send(message())
    assert err.value.transient and err.value.provider_fault


async def test_sendgrid_validates_like_the_real_api(apis):
    provider = sendgrid(apis)
    broken = dataclasses.replace(message(), subject="")
    with pytest.raises(ProviderError) as err:
        await provider.send(broken)
    assert err.value.status == 400 and not err.value.provider_fault


async def test_ses_raw_send_through_moto(apis):
    client = boto3.client("sesv2", region_name="eu-west-1", endpoint_url=apis.ses_url,
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_email_identity(EmailIdentity="shopflow.example")
    provider = SesProvider("eu-west-1", apis.ses_url, POOL, 5.0, "test", "test")
    result = await provider.send(message())
    assert result.provider == "ses" and result.provider_message_id


async def test_ses_refuses_an_unverified_sender(apis):
    provider = SesProvider("eu-west-1", apis.ses_url, POOL, 5.0, "test", "test")
    mail = dataclasses.replace(message(), sender=("x@not-verified.example", "Someone"))
    with pytest.raises(ProviderError) as err:
        await provider.send(mail)
    assert not err.value.transient


def test_mime_survives_mailgun_byte_for_byte(apis):
    mail = message("order.placed")
    parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    assert [(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()] == [
        (a.filename, a.content) for a in mail.attachments]

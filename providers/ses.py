"""Amazon SES v2 through boto3: raw MIME (SendEmail with Content.Raw), so attachments and
headers survive. Endpoint, region and keys from settings; moto's server stands in for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processors.feedback import ses_tag_value
from providers.base import BlockingPool, Provider, ProviderError

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.message import OutgoingEmail

THROTTLING = {"Throttling", "ThrottlingException", "TooManyRequestsException",
              "LimitExceededException", "SendingPausedException"}
PROVIDER_SIDE = {"AccountSuspendedException", "MailFromDomainNotVerifiedException",
                 "InternalFailure", "ServiceUnavailable", "AccessDeniedException"}


class SesProvider(Provider):
    name = "ses"
    cost_per_1k = 0.10
    region = "eu"
    rate_per_s = 14.0  # SES's default sending quota

    @classmethod
    def from_settings(cls, settings: Settings, pool: BlockingPool) -> SesProvider:
        return cls(settings.ses_region, settings.ses_endpoint_url, pool,
                   settings.provider_timeout_s)

    def __init__(self, region: str, endpoint_url: str | None, pool: BlockingPool,
                 timeout_s: float, access_key: str = "", secret_key: str = "") -> None:
        credentials = ({"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
                       if access_key else {})
        self._client = boto3.client(
            "sesv2", region_name=region, endpoint_url=endpoint_url or None,
            config=Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                          retries={"max_attempts": 1}), **credentials)
        self._pool = pool

    def _send(self, message: OutgoingEmail) -> str:
        try:
            answer = self._client.send_email(
                FromEmailAddress=message.sender[0],
                Destination={"ToAddresses": [message.recipient[0]]},
                Content={"Raw": {"Data": message.raw}},
                EmailTags=[{"Name": name, "Value": ses_tag_value(value)}
                           for name, value in message.echo.items() if value])
        except (ClientError, BotoCoreError) as err:
            raise self.classify(err) from err
        return str(answer["MessageId"])

    async def deliver(self, message: OutgoingEmail) -> str:
        return await self._pool.run(self._send, message)

    def classify(self, error: BaseException) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in THROTTLING or status == 429:
                return ProviderError(self.name, code, transient=True, status=429)
            if code in PROVIDER_SIDE or (status or 500) >= 500:
                return ProviderError(self.name, code, transient=True, status=status)
            return ProviderError(self.name, f"{code}: {error}"[:300], transient=False,
                                 status=status, provider_fault=False)
        return ProviderError(self.name, f"{type(error).__name__}: {error}"[:300], transient=True)

"""One frozen settings object, read from ``FLOWMAIL_*`` environment variables.

Every default works on the local stack (``flowmail stack up``), so a new user sets nothing.
Secrets (SMTP password, provider keys) are only ever read from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# templates/ and schemas/ sit beside the packages both in a checkout and when installed from
# the wheel (pyproject.toml ships them as data packages), so one root finds them in both.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = PROJECT_ROOT / "templates"
SCHEMA_DIR = PROJECT_ROOT / "schemas"
# In a checkout the local stack's files live in it; installed, in the working directory.
DEFAULT_HOME = (PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
                ) / ".flowmail"


class SettingsError(ValueError):
    """A ``FLOWMAIL_*`` variable holds a value that cannot be used; the message names it."""


def _doc(text: str, **kwargs: Any) -> Any:
    return field(metadata={"doc": text}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Each field maps to ``FLOWMAIL_<FIELD_NAME_UPPER>``."""

    app_id: str = _doc("Faust app id: the consumer group and the prefix of table changelogs.",
                       default="flowmail")
    worker_processes: int = _doc("Processes `flowmail worker` starts, each a full member of "
                                 "every consumer group; 0: one per CPU core.", default=0)
    event_loop: str = _doc("Event loop of the worker processes: uvloop or asyncio "
                           "(docs/performance.md).", default="uvloop")
    critical_lane: bool = _doc("`flowmail worker` also starts the critical lane, a process "
                               "that alone routes and sends security mail (password resets, "
                               "sign-ups); the other processes leave it to that one.",
                               default=True)
    bulk_nice: int = _doc("Niceness of the other processes when the critical lane runs "
                          "(0-19): the kernel then runs security mail first.", default=10)
    kafka_bootstrap: str = _doc("Kafka bootstrap servers (host:port[,host:port]).",
                                default="127.0.0.1:9092")
    kafka_security_protocol: str = _doc(
        "How Kafka clients connect: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (managed "
        "clusters: SASL_SSL). README: \"Connect to your cluster\".", default="PLAINTEXT")
    kafka_sasl_mechanism: str = _doc("With SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or "
                                     "OAUTHBEARER (OIDC client credentials).", default="")
    kafka_sasl_username: str = _doc("SASL user name (Confluent Cloud: the API key).",
                                    default="")
    kafka_sasl_password: str = _doc("SASL password (secret: the environment, or a file named "
                                    "by FLOWMAIL_KAFKA_SASL_PASSWORD_FILE).",
                                    default="", repr=False)
    kafka_ssl_ca_file: str = _doc("CA certificate(s), PEM, that signed the brokers' "
                                  "certificates (empty: the system's CAs).", default="")
    kafka_ssl_cert_file: str = _doc("Client certificate, PEM, for mutual TLS.", default="")
    kafka_ssl_key_file: str = _doc("Client private key, PEM, for mutual TLS.", default="")
    kafka_ssl_key_password: str = _doc("Password of an encrypted client key (secret).",
                                       default="", repr=False)
    kafka_ssl_verify_hostname: bool = _doc("Check that a broker's certificate names the host "
                                           "connected to (off only for test clusters).",
                                           default=True)
    kafka_oauth_token_url: str = _doc("OAUTHBEARER: the OIDC token endpoint.", default="")
    kafka_oauth_client_id: str = _doc("OAUTHBEARER: the client id.", default="")
    kafka_oauth_client_secret: str = _doc("OAUTHBEARER: the client secret (secret).",
                                          default="", repr=False)
    kafka_oauth_scope: str = _doc("OAUTHBEARER: scope(s) to ask for (optional).", default="")
    opensearch_url: str = _doc("OpenSearch base URL for the analytics sink (https:// for "
                               "TLS).", default="http://127.0.0.1:9200")
    opensearch_username: str = _doc("OpenSearch basic-auth user (empty: none).", default="")
    opensearch_password: str = _doc("OpenSearch basic-auth password (secret).", default="",
                                    repr=False)
    opensearch_ca_file: str = _doc("CA certificate(s), PEM, of OpenSearch's TLS certificate "
                                   "(empty: the system's CAs).", default="")
    opensearch_verify_certs: bool = _doc("Verify OpenSearch's certificate and host name.",
                                         default=True)
    opensearch_aws_region: str = _doc("Amazon OpenSearch Service: sign requests with AWS "
                                      "SigV4 for this region (credentials: boto3's chain).",
                                      default="")
    opensearch_aws_service: str = _doc("SigV4 service name: es (managed domains) or aoss "
                                       "(serverless).", default="es")
    index_prefix: str = _doc("Prefix of the monthly analytics indices (<prefix>-YYYY.MM).",
                             default="email-events")
    home: Path = _doc("Working folder for the local stack, its cache and the mail outbox.",
                      default=DEFAULT_HOME)
    smtp_host: str = _doc("SMTP server host.", default="127.0.0.1")
    smtp_port: int = _doc("SMTP server port.", default=1025)
    smtp_username: str = _doc("SMTP user name; empty means no authentication.", default="")
    smtp_password: str = _doc("SMTP password (secret: environment only).", default="", repr=False)
    smtp_tls: str = _doc("SMTP transport security: none, starttls or tls.", default="none")
    smtp_ca_file: str = _doc("CA bundle to verify the SMTP server's certificate (empty: the "
                             "system's).", default="")
    smtp_pool_size: int = _doc("SMTP connections kept open per priority and worker process "
                               "(8: measured best of 4, 8, 16; docs/performance.md).", default=8)
    smtp_timeout_s: float = _doc("SMTP connect/command timeout in seconds.", default=10.0)
    pseudonym_secret: str = _doc("HMAC key that turns addresses into recipient keys "
                                 "(partitioning, analytics); 32+ characters. Empty: generated "
                                 "for the local stack, refused anywhere else.",
                                 default="", repr=False)
    unsubscribe_secret: str = _doc("HMAC key(s) of unsubscribe links, 32+ characters each; "
                                   "'new,old' rotates (the first signs, all verify). Empty: "
                                   "generated for the local stack, refused anywhere else.",
                                   default="", repr=False)
    providers_critical: str = _doc("Provider chain for critical mail, in failover order.",
                                   default="smtp")
    providers_transactional: str = _doc("Provider chain for transactional mail.",
                                        default="smtp")
    providers_marketing: str = _doc("Provider chain for marketing mail.", default="smtp")
    smart_routing: str = _doc("Priorities whose chain is ordered by score instead of by list.",
                              default="transactional")
    routing_weights: str = _doc("Score weights.", default="health=0.4,load=0.3,cost=0.2,geo=0.1")
    provider_costs: str = _doc("Price per 1,000 emails, name=price list (any currency); "
                               "overrides what each provider module declares.", default="")
    provider_regions: str = _doc("Region a provider sends from (us, eu, apac), name=region "
                                 "list; overrides the provider module's.", default="")
    provider_rates: str = _doc("Sends per second per provider (token bucket), name=rate list; "
                               "overrides the provider module's.", default="")
    sender_concurrency: int = _doc("Emails each sender renders and sends at once (provider "
                                   "round trips overlap; per-recipient order is not kept).",
                                   default=32)
    bulk_batch_size: int = _doc("Marketing commands per batch API call (1 sends one by one).",
                                default=1000)
    bulk_batch_seconds: float = _doc("Longest wait to fill a marketing batch.", default=0.5)
    campaign_lead: int = _doc("Marketing commands waiting for the senders (email.marketing) "
                              "above which campaigns hand out no more recipients: how far a "
                              "pause or cancel lags behind an unthrottled campaign.",
                              default=20000)
    provider_timeout_s: float = _doc("Timeout of one provider API call.", default=10.0)
    provider_threads: int = _doc("Threads for the blocking SDKs (boto3, sendgrid, requests).",
                                 default=16)
    breaker_failures: int = _doc("Consecutive provider failures that open its breaker.",
                                 default=5)
    breaker_cooldown_s: float = _doc("Seconds a breaker stays open before one probe.",
                                     default=30.0)
    retry_max_attempts: str = _doc("Attempts per priority before a command is failed.",
                                   default="critical=8,transactional=6,marketing=3")
    retry_base_s: float = _doc("First retry delay ceiling (doubles per attempt, jittered).",
                               default=2.0)
    retry_cap_s: float = _doc("Longest retry delay.", default=900.0)
    sendgrid_api_key: str = _doc("SendGrid API key (secret).", default="", repr=False)
    sendgrid_host: str = _doc("SendGrid API base URL.", default="https://api.sendgrid.com")
    mailgun_api_key: str = _doc("Mailgun API key (secret).", default="", repr=False)
    mailgun_domain: str = _doc("Mailgun sending domain.", default="")
    mailgun_base_url: str = _doc("Mailgun API base URL (EU: https://api.eu.mailgun.net).",
                                 default="https://api.mailgun.net")
    tracking_types: str = _doc("Email types whose opens and clicks flowmail tracks "
                               "(comma-separated; empty: none; password resets never).",
                               default="marketing_campaign")
    tracking_base_url: str = _doc("Public address of `flowmail webhooks` that tracked links "
                                  "and pixels point to.", default="http://127.0.0.1:6080")
    preferences_ttl_days: int = _doc("How long the preference centre link of a marketing "
                                     "email works (days).", default=90)
    tracking_secret: str = _doc("HMAC key(s) of tracking ids, 32+ characters each (secret; "
                                "new,old rotates); generated for the local stack.",
                                default="", repr=False)
    alert_window_s: float = _doc("Window the anomaly rules look at.", default=3600.0)
    alert_min_sample: int = _doc("Emails a key needs in the window before a rate can raise an "
                                 "alert (complaints: ten times this).", default=100)
    alert_bounce_rate: float = _doc("Bounce rate that raises an alert (per provider, shop, "
                                    "recipient domain, campaign).", default=0.05)
    alert_complaint_rate: float = _doc("Complaint rate that raises an alert (per shop, "
                                       "campaign).", default=0.001)
    alert_failure_rate: float = _doc("Share of a provider's sends failed or deferred that "
                                     "raises an alert.", default=0.10)
    alert_webhook_url: str = _doc("Anomaly alerts are POSTed here as JSON (empty: none).",
                                  default="")
    alert_slack_url: str = _doc("Slack-compatible incoming webhook for anomaly alerts (secret: "
                                "the URL is the credential).", default="", repr=False)
    alert_pause_campaigns: bool = _doc("A campaign whose bounce- or complaint-rate alert is "
                                       "raised is paused (an operator resumes it).",
                                       default=True)
    alert_take_provider_out: bool = _doc("While a provider's failure-rate alert is raised, the "
                                         "chains skip it (if another provider is left).",
                                         default=True)
    alert_emails: str = _doc("Operators who get anomaly alerts by email, through flowmail "
                             "itself as critical mail (comma-separated; empty: none).",
                             default="")
    report_emails: str = _doc("Operators who get the daily report (HTML and PDF) by email "
                              "(comma-separated; empty: no report is sent).", default="")
    daily_report_at: str = _doc("UTC time (HH:MM) the worker sends the report of the day "
                                "before.", default="06:00")
    operator_sender_name: str = _doc("Sender name of flowmail's own mail to its operators.",
                                     default="flowmail")
    operator_reply_to: str = _doc("Reply address in flowmail's own mail to its operators "
                                  "(empty: the address of FLOWMAIL_MAIL_FROM).", default="")
    soft_bounce_limit: int = _doc("Soft bounces of one address within the window that "
                                  "suppress it like a hard bounce.", default=3)
    soft_bounce_window_s: float = _doc("The window soft bounces are counted in.",
                                       default=7 * 24 * 3600.0)
    webhook_host: str = _doc("Interface of `flowmail webhooks` (0.0.0.0 in containers).",
                             default="127.0.0.1")
    webhook_port: int = _doc("Port of `flowmail webhooks` (provider events, /ready).",
                             default=6080)
    dashboard_host: str = _doc("Interface of `flowmail dashboard` (an operator page: keep it "
                               "private).", default="127.0.0.1")
    dashboard_port: int = _doc("Port of `flowmail dashboard`.", default=6090)
    dashboard_refresh_s: float = _doc("How often the dashboard's figures are refreshed and "
                                      "pushed to open pages.", default=2.0)
    webhook_max_body_bytes: int = _doc("Larger webhook requests are refused (413).",
                                       default=1024 * 1024)
    webhook_tolerance_s: float = _doc("How far a signed webhook's timestamp may be from now; "
                                      "older ones are refused as replays.", default=900.0)
    sendgrid_webhook_key: str = _doc("SendGrid Event Webhook verification key (the base64 "
                                     "public key SendGrid shows); empty: endpoint off.",
                                     default="")
    mailgun_webhook_signing_key: str = _doc("Mailgun webhook signing key (secret); empty: "
                                            "endpoint off.", default="", repr=False)
    sns_cert_host: str = _doc("Hosts (a regular expression matched in full) SNS signing "
                              "certificates and subscription URLs may come from.",
                              default=r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
    sns_ca_file: str = _doc("CA bundle for fetching SNS certificates (empty: the system's).",
                            default="")
    sns_topic_arns: str = _doc("SNS topics whose SES events are accepted (comma-separated; "
                               "empty: SES endpoint off).", default="")
    ses_region: str = _doc("SES region.", default="eu-west-1")
    ses_endpoint_url: str = _doc("SES endpoint override (tests point it at moto).", default="")
    mail_from: str = _doc("Envelope and header sender.",
                          default="ShopFlow <no-reply@shopflow.example>")
    partitions_domain: int = _doc("Partitions of each domain event topic.", default=3)
    partitions_email: int = _doc("Partitions of each email command, retry and ledger topic "
                                 "(12: an even share for 1, 2, 3, 4 or 6 sender processes).",
                                 default=12)
    partitions_delivery: int = _doc("Partitions of email.delivery.", default=3)
    replication_factor: int = _doc("Replication factor of every topic flowmail creates.",
                                   default=1)
    erasure_bound_s: int = _doc("Longest time a person's address stays readable anywhere "
                                "flowmail keeps it after an erasure (s): every topic that can "
                                "hold it deletes or compacts within it (README: Erasure).",
                                default=30 * 24 * 3600)
    retention_ms: int = _doc("Retention of delete-policy topics (ms); DLQ keeps 4x this "
                             "(both capped by the erasure bound).",
                             default=7 * 24 * 3600 * 1000)
    max_payload_bytes: int = _doc("Larger domain events are rejected to the DLQ.",
                                  default=256 * 1024)
    pdf_attachments: str = _doc("Email types that get a PDF (comma-separated; empty for none). "
                                "A PDF costs 1-4 ms of CPU (processors/pdf.py).",
                                default="invoice,order_confirmation,daily_report")
    branding_file: Path = _doc("Per-shop colours by shop_id (JSON).",
                               default=TEMPLATE_DIR / "branding.json")
    web_host: str = _doc("Interface of the worker's web server (0.0.0.0 in containers).",
                         default="127.0.0.1")
    web_port: int = _doc("Port of the worker's web server (/metrics, /health, /ready).",
                         default=6066)
    sink_batch_size: int = _doc("Delivery events per OpenSearch bulk request.", default=2000)
    sink_batch_seconds: float = _doc("Longest wait to fill a bulk batch once its first event "
                                     "is there.", default=0.5)
    startup_timeout_s: float = _doc("How long start-up calls wait for a broker that is still "
                                    "starting (coordinator loading, no leader yet).",
                                    default=120.0)
    schema_registry_url: str = _doc(
        "Confluent-compatible Schema Registry API (Apicurio: .../apis/ccompat/v7). Set: "
        "producers register and look schemas up there and consumers resolve writer ids "
        "there; empty: the ids of schemas/registry.json (docs/contracts.md).", default="")
    schema_registry_port: int = _doc("Port of the local registry `flowmail stack up "
                                     "--with-registry` starts.", default=8081)
    java_home: str = _doc("JDK used to run the local stack (17 is what Kafka 4 and "
                          "OpenSearch 2.19 are tested on).",
                          default="/usr/lib/jvm/java-17-openjdk-amd64")

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def state_dir(self) -> Path:
        """Local copies of the changelogs (ledgers, profiles); rebuilt from Kafka at start."""
        return self.home / "state"


def _convert(name: str, raw: str, kind: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind_name == "bool":
            return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                    "no": False}[raw.strip().lower()]
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
        if kind_name == "Path":
            return Path(raw).expanduser().resolve()
        return raw
    except (ValueError, KeyError) as err:
        raise SettingsError(f"FLOWMAIL_{name.upper()}={raw!r} is not a valid {kind_name}") from err


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``); unknown keys are ignored."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = env.get(f"FLOWMAIL_{spec.name.upper()}")
        if not spec.repr:  # a secret: from the environment, or from a mounted file
            raw = _secret(spec.name, raw, env.get(f"FLOWMAIL_{spec.name.upper()}_FILE"))
        # an empty value is a value for text settings (FLOWMAIL_PDF_ATTACHMENTS= means none)
        # and means "unset" for numbers and paths
        if raw is not None and (raw != "" or spec.type == "str"):
            values[spec.name] = _convert(spec.name, raw, spec.type)
    settings = Settings(**values)
    if settings.smtp_tls not in {"none", "starttls", "tls"}:
        raise SettingsError(
            f"FLOWMAIL_SMTP_TLS={settings.smtp_tls!r}: use none, starttls or tls")
    if settings.event_loop not in {"uvloop", "asyncio"}:
        raise SettingsError(
            f"FLOWMAIL_EVENT_LOOP={settings.event_loop!r}: use uvloop or asyncio")
    return settings


def _secret(name: str, raw: str | None, path: str | None) -> str | None:
    """``FLOWMAIL_<NAME>_FILE`` names a file holding the secret (a Kubernetes Secret mounted
    as a volume, a Docker secret); its content without the trailing line break."""
    if not path:
        return raw
    variable = f"FLOWMAIL_{name.upper()}"
    if raw:
        raise SettingsError(f"both {variable} and {variable}_FILE are set: use one")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as err:
        raise SettingsError(f"{variable}_FILE={path}: {err.strerror}") from err


def name_values(raw: str, setting: str, kind: type = float) -> dict[str, Any]:
    """Parse ``a=1,b=2`` settings; the error names the variable."""
    values = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = kind(value)
        except ValueError as err:
            raise SettingsError(f"FLOWMAIL_{setting.upper()}: {item!r} is not name=number") from err
    return values


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows for the README and ``flowmail settings``."""
    rows = []
    for spec in fields(Settings):
        default = "" if not spec.repr else str(spec.default)
        rows.append((f"FLOWMAIL_{spec.name.upper()}", default, spec.metadata["doc"]))
    return rows

"""Closed vocabularies shared by every stage. Unknown values map to explicit fallbacks."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    CRITICAL = "critical"            # security mail; must never wait behind anything
    TRANSACTIONAL = "transactional"  # order, shipping, invoice, support mail
    MARKETING = "marketing"          # campaigns; volume, may wait

    @property
    def topic(self) -> str:
        return f"email.{self.value}"

    @property
    def retry_topic(self) -> str:
        return f"email.retry.{self.value}"


class Category(StrEnum):
    """What a recipient can opt out of; suppressions and (later) a preference centre use it."""

    SECURITY = "security"            # password reset: asked for just now, never suppressed
    ACCOUNT = "account"              # welcome / activation
    TRANSACTIONAL = "transactional"  # order, shipping, invoice, support: the purchase itself
    MARKETING = "marketing"          # campaigns
    OPERATIONS = "operations"        # flowmail's own alerts and reports to its operators


class ConsentCategory(StrEnum):
    """What a person may agree to get from a shop, one opt-in each (campaign.launched's
    ``category``). Transactional and security mail need none."""

    MARKETING = "marketing"        # offers and newsletters
    PRODUCT_NEWS = "product_news"  # new products and back-in-stock news
    SURVEYS = "surveys"            # review requests and surveys


class ConsentSource(StrEnum):
    """Where an opt-in or opt-out was given (consent.changed ``source``)."""

    SIGNUP = "signup"                        # user.created's marketing_opt_in
    CHECKOUT = "checkout"
    PREFERENCE_CENTRE = "preference_centre"  # flowmail's signed preferences page
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    SUPPORT = "support"                      # recorded by the shop's staff
    IMPORT = "import"                        # brought over from another system


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the mailbox does not exist: stop all but security mail
    SOFT_BOUNCES = "soft_bounces"  # refused for now, again and again: as a hard bounce
    COMPLAINT = "complaint"      # marked as spam: stop all but security mail, every shop
    UNSUBSCRIBE = "unsubscribe"  # clicked unsubscribe: that shop's marketing only
    MANUAL = "manual"            # an operator's decision, in the scope the operator chose


class DeliveryStatus(StrEnum):
    SENT = "sent"                              # a provider accepted the message
    DEFERRED = "deferred"                      # transient failure; a retry is scheduled
    FAILED = "failed"                          # permanent failure or attempts exhausted
    SUPPRESSED = "suppressed"                  # recipient is on the suppression list
    SKIPPED_DUPLICATE = "skipped_duplicate"    # idempotency ledger says it already went out
    AMBIGUOUS = "ambiguous"                    # a batch call's outcome is unknown (a crash
                                               # during it); marketing policy: never resent
    UNKNOWN = "unknown"                        # a provider status flowmail cannot map
    # reported later by the provider (webhooks, processors/feedback.py)
    DELIVERED = "delivered"                    # the receiving server accepted it
    BOUNCED = "bounced"                        # refused by the receiver (bounce_type hard/soft)
    COMPLAINED = "complained"                  # the recipient marked it as spam
    OPENED = "opened"                          # the recipient's client loaded it
    CLICKED = "clicked"                        # the recipient followed a link (url)
    UNSUBSCRIBED = "unsubscribed"              # unsubscribed through the provider


class RejectReason(StrEnum):
    UNDECODABLE = "undecodable"                # bytes are not a framed Avro record
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"    # schema id not in the registry
    REGISTRY_UNAVAILABLE = "registry_unavailable"  # the Schema Registry did not answer
    INCOMPATIBLE_SCHEMA = "incompatible_schema"  # a new version breaks the evolution rules
    REGISTRY_REFUSED = "registry_refused"      # the Schema Registry refused another way
    SCHEMA_MISMATCH = "schema_mismatch"        # record does not fit the topic's schema
    MISSING_FIELD = "missing_field"            # a field the email needs is empty
    INVALID_ADDRESS = "invalid_address"        # recipient address is not deliverable syntax
    HEADER_INJECTION = "header_injection"      # CR/LF/NUL in a value bound for a header
    MISSING_POSTAL_ADDRESS = "missing_postal_address"  # marketing without the shop's postal
                                               # address (CAN-SPAM)
    OVERSIZED = "oversized"                    # payload larger than FLOWMAIL_MAX_PAYLOAD_BYTES
    UNSUPPORTED_TOPIC = "unsupported_topic"    # no route for this topic
    RENDER_FAILED = "render_failed"            # template could not be rendered
    EXPIRED = "expired"                        # too late to be useful (an expired reset link)
    PERMANENT_PROVIDER_ERROR = "permanent_provider_error"  # provider refused for good
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # transient failures beyond max attempts
    INTERNAL = "internal"                      # a bug; the record is kept for replay

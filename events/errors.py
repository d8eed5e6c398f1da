"""Error codes of the events domain (pull API, webhooks), each a stable ``code`` the API renders."""

from enum import StrEnum

from core.exceptions import Conflict, DomainError


class EventsCode(StrEnum):
    LONG_POLL_BUSY = "long_poll_busy"
    INVALID_WEBHOOK_URL = "invalid_webhook_url"
    WEBHOOK_ADDRESS_REFUSED = "webhook_address_refused"
    WEBHOOK_DELETED = "webhook_deleted"
    TOO_MANY_WEBHOOKS = "too_many_webhooks"


class EventsError(DomainError):
    code = EventsCode.INVALID_WEBHOOK_URL


class LongPollBusy(DomainError):
    """Every long-poll slot of this web process is taken: poll again without ``wait``, or after a second."""

    code = EventsCode.LONG_POLL_BUSY
    http_status = 429


class WebhookAddressRefused(EventsError):
    """The endpoint's host resolves to a loopback, private, link-local or reserved address."""

    code = EventsCode.WEBHOOK_ADDRESS_REFUSED


class WebhookDeleted(Conflict):
    code = EventsCode.WEBHOOK_DELETED


class TooManyWebhooks(Conflict):
    code = EventsCode.TOO_MANY_WEBHOOKS

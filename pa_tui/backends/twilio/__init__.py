"""Twilio: Messages and Calls API client, the Messaging capability, webhook signatures and parsing.

- :class:`TwilioClient` — REST API 2010-04-01 over httpx (``send_sms``,
  ``start_confirmation_call``, ``get_message``, ``get_call``, ``check``).
- :class:`TwilioMessaging` — :class:`pa_tui.backends.base.Messaging` on a client.
- :mod:`.signature` — ``X-Twilio-Signature``: :func:`compute_signature`, :func:`verify_signature`.
- :mod:`.parse` — status callbacks and incoming messages into small models.
- :mod:`.errors` — Twilio error codes as agent-readable :class:`TwilioError`\\ s.
"""

from pa_tui.backends.twilio.client import (
    PRODUCTION_URL,
    AccountInfo,
    CallResult,
    MessageInfo,
    SmsResult,
    TwilioClient,
)
from pa_tui.backends.twilio.errors import (
    TwilioAuthError,
    TwilioBadRequest,
    TwilioError,
    TwilioNotFound,
    TwilioPermissionDenied,
    TwilioRateLimited,
    TwilioUnavailable,
    describe_code,
)
from pa_tui.backends.twilio.messaging import INBOUND_SMS_PATH, STATUS_CALLBACK_PATH, TwilioMessaging
from pa_tui.backends.twilio.parse import (
    CallStatusUpdate,
    DeliveryStatus,
    InboundSms,
    MessageStatus,
    WebhookParseError,
    detect_keyword,
    parse_call_status,
    parse_inbound_sms,
    parse_status_callback,
)
from pa_tui.backends.twilio.signature import SIGNATURE_HEADER, compute_signature, verify_signature

__all__ = [
    "INBOUND_SMS_PATH",
    "PRODUCTION_URL",
    "SIGNATURE_HEADER",
    "STATUS_CALLBACK_PATH",
    "AccountInfo",
    "CallResult",
    "CallStatusUpdate",
    "DeliveryStatus",
    "InboundSms",
    "MessageInfo",
    "MessageStatus",
    "SmsResult",
    "TwilioAuthError",
    "TwilioBadRequest",
    "TwilioClient",
    "TwilioError",
    "TwilioMessaging",
    "TwilioNotFound",
    "TwilioPermissionDenied",
    "TwilioRateLimited",
    "TwilioUnavailable",
    "WebhookParseError",
    "compute_signature",
    "describe_code",
    "detect_keyword",
    "parse_call_status",
    "parse_inbound_sms",
    "parse_status_callback",
    "verify_signature",
]

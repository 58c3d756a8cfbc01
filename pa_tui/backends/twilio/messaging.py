"""The :class:`~pa_tui.backends.base.Messaging` capability on Twilio."""

from __future__ import annotations

from typing import Final

from pa_tui.backends.twilio.client import TwilioClient
from pa_tui.domain.phones import PhoneNumber, parse_phone

__all__ = ["INBOUND_SMS_PATH", "STATUS_CALLBACK_PATH", "TwilioMessaging"]

#: Where, under the inbound listener's public base URL, Twilio posts message status callbacks …
STATUS_CALLBACK_PATH: Final = "/twilio/status"
#: … and patients' replies (configure this as the number's "A message comes in" webhook).
INBOUND_SMS_PATH: Final = "/twilio/sms"


class TwilioMessaging:
    """Sends reminders from one Twilio number (or Messaging Service). Implements ``Messaging``.

    With ``status_callback_base`` (the inbound listener's public URL, e.g.
    ``https://pa.example.org``) every message asks Twilio for status callbacks
    at ``{base}/twilio/status`` unless the caller names another URL.
    """

    def __init__(
        self,
        client: TwilioClient,
        from_number: PhoneNumber | str | None,
        status_callback_base: str | None = None,
        *,
        messaging_service_sid: str | None = None,
    ) -> None:
        if from_number is None and not messaging_service_sid:
            raise ValueError("TwilioMessaging needs a from_number or a messaging_service_sid")
        if isinstance(from_number, str):
            parsed = parse_phone(from_number)
            if not isinstance(parsed, PhoneNumber):
                raise ValueError("the Twilio sender is not a phone number")
            from_number = parsed
        self.client = client
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_base = status_callback_base.rstrip("/") if status_callback_base else None

    @property
    def default_status_callback(self) -> str | None:
        return f"{self.status_callback_base}{STATUS_CALLBACK_PATH}" if self.status_callback_base else None

    async def send_sms(self, to: PhoneNumber, body: str, *, status_callback: str | None = None) -> str:
        """Send ``body`` to ``to``; returns the message SID. Raises ``TwilioError`` subclasses."""
        result = await self.client.send_sms(
            to,
            body,
            from_=self.from_number,
            messaging_service_sid=self.messaging_service_sid,
            status_callback=status_callback or self.default_status_callback,
        )
        return result.sid

    async def aclose(self) -> None:
        await self.client.aclose()

    def __repr__(self) -> str:
        return f"TwilioMessaging(client={self.client!r})"

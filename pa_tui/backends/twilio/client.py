"""Twilio REST API 2010-04-01 client (httpx): Messages, Calls, Account.

Usable on its own from a script::

    async with TwilioClient(account_sid="AC…", auth_token="…") as twilio:
        sent = await twilio.send_sms(parse_phone("+15551234567"), "See you at 9:30", from_="+15557654321")

Requests follow the official OpenAPI document (``twilio_api_v2010.json``):
form-encoded bodies, E.164 numbers, HTTP basic auth with the Account SID and
auth token or an API key SID and secret. The token / secret only ever lives in
the auth object: never in a URL, a log line, a ``repr`` or an exception.

Failures become :mod:`pa_tui.backends.twilio.errors` errors (also the
matching :mod:`pa_tui.backends.base` class). GETs are retried (tenacity) on
5xx, transport errors and short 429s, with exponential backoff and jitter.
Creating a message or a call is *not* idempotent, so a POST is sent once and
never retried here: a lost answer is reported as :class:`TwilioUnavailable`
with ``may_have_sent`` set, for the caller (the outbox) to reconcile.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import math
import random
import re
from collections.abc import Generator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pa_tui.backends.base import AuthError, BadRequest, RateLimited
from pa_tui.backends.twilio.errors import (
    AUTH_FIX,
    TwilioBadRequest,
    TwilioUnavailable,
    describe_code,
    error_for,
)
from pa_tui.domain.phones import NoCallerId, PhoneNumber, PhoneNumberError, parse_phone

__all__ = [
    "API_VERSION",
    "PRODUCTION_URL",
    "AccountInfo",
    "CallResult",
    "MessageInfo",
    "SmsResult",
    "TwilioClient",
]

log = logging.getLogger(__name__)

PRODUCTION_URL: Final = "https://api.twilio.com"
API_VERSION: Final = "2010-04-01"
# Longest Retry-After waited out inside one GET; longer ones go back to the caller.
MAX_RETRY_AFTER_WAIT: Final = 10.0

_ACCOUNT_SID_RE: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_RE: Final = re.compile(r"^SK[0-9a-fA-F]{32}$")
_MESSAGE_SID_RE: Final = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_CALL_SID_RE: Final = re.compile(r"^CA[0-9a-fA-F]{32}$")
_SERVICE_SID_RE: Final = re.compile(r"^MG[0-9a-fA-F]{32}$")


# --------------------------------------------------------------------------- results
class SmsResult(BaseModel):
    """What Twilio said when it accepted a message: its SID and first status (queued / accepted)."""

    model_config = ConfigDict(frozen=True)

    sid: str
    status: str
    num_segments: int | None = None


class CallResult(BaseModel):
    """What Twilio said when it accepted (or was asked about) a call."""

    model_config = ConfigDict(frozen=True)

    sid: str
    status: str
    duration: int | None = None


class MessageInfo(BaseModel):
    """A fetched message, without its body (PHI stays where it is)."""

    model_config = ConfigDict(frozen=True)

    sid: str
    status: str
    direction: str | None = None
    error_code: int | None = None
    num_segments: int | None = None
    date_created: datetime | None = None
    date_sent: datetime | None = None
    date_updated: datetime | None = None
    messaging_service_sid: str | None = None

    @property
    def error_title(self) -> str | None:
        """A readable reason for a failed or undelivered message."""
        return describe_code(self.error_code).title if self.error_code is not None else None


class AccountInfo(BaseModel):
    """The account the credentials belong to (for ``pa-tui doctor``)."""

    model_config = ConfigDict(frozen=True)

    sid: str
    friendly_name: str | None = None
    status: str | None = None
    type: str | None = None


# --------------------------------------------------------------------------- helpers
class _BasicAuth(httpx.Auth):
    """HTTP basic auth added per request; the secret never sits in default headers or a repr."""

    def __init__(self, username: str, password: SecretStr) -> None:
        self._username = username
        self._password = password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        pair = f"{self._username}:{self._password.get_secret_value()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        yield request

    def __repr__(self) -> str:
        return f"_BasicAuth({self._username!r}, **********)"


def _secret(value: str | SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    secret = value if isinstance(value, SecretStr) else SecretStr(str(value))
    return secret if secret.get_secret_value().strip() else None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after <= MAX_RETRY_AFTER_WAIT
    return isinstance(exc, TwilioUnavailable)


class _Wait:
    """Exponential backoff with jitter for 5xx / transport errors; ``Retry-After`` (or one second) for 429."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = max(0.0, initial)
        self._maximum = max(self._initial, maximum)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return max(0.0, exc.retry_after)
        backoff = self._initial * 2 ** max(0, state.attempt_number - 1)
        return min(self._maximum, backoff + random.uniform(0, self._initial))


def _retry_after(response: httpx.Response) -> float | None:
    raw = (response.headers.get("Retry-After") or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_code(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and code.isdigit():
            return int(code)
    return None


def _rfc2822(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _e164(value: PhoneNumber | str, code: int) -> str:
    """E.164 text of a number, or a :class:`TwilioBadRequest` with ``code`` (never the value)."""
    number: PhoneNumber | NoCallerId
    if isinstance(value, PhoneNumber):
        number = value
    else:
        try:
            number = parse_phone(value)
        except PhoneNumberError:
            title, fix = describe_code(code)
            raise TwilioBadRequest(title, fix, code=code) from None
    if not isinstance(number, PhoneNumber):
        title, fix = describe_code(code)
        raise TwilioBadRequest(title, fix, code=code)
    return number.e164


def _check_url(url: str, code: int) -> str:
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        title, fix = describe_code(code)
        raise TwilioBadRequest(title, fix, code=code)
    return url


class TwilioClient:
    """Async client for the Twilio REST API 2010-04-01. Use ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str | SecretStr | None = None,
        api_key: str | None = None,
        api_secret: str | SecretStr | None = None,
        base_url: str = PRODUCTION_URL,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 3,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        account_sid = (account_sid or "").strip()
        if not _ACCOUNT_SID_RE.match(account_sid):
            raise AuthError("The Twilio Account SID is not valid (it is AC followed by 32 hex digits)", AUTH_FIX)
        token = _secret(auth_token)
        secret = _secret(api_secret)
        key = (api_key or "").strip() or None
        if key is not None:
            if not _API_KEY_RE.match(key):
                raise AuthError("The Twilio API key SID is not valid (it is SK followed by 32 hex digits)", AUTH_FIX)
            if secret is None:
                raise AuthError("The Twilio API key secret is not set", AUTH_FIX)
            username, password = key, secret
        elif token is not None:
            username, password = account_sid, token
        else:
            raise AuthError("No Twilio auth token or API key secret is set", AUTH_FIX)
        self.base_url = base_url.rstrip("/")
        parts = httpx.URL(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise BadRequest("The Twilio base URL is not an http(s) URL", f"Use {PRODUCTION_URL}.")
        self.account_sid = account_sid
        self.uses_api_key = key is not None
        self._retries = max(1, retries)
        self._wait = _Wait(backoff_initial, backoff_max)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            auth=_BasicAuth(username, password),
            headers={"Accept": "application/json", "User-Agent": "pa-tui"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        how = "api_key" if self.uses_api_key else "auth_token"
        return f"TwilioClient(account_sid={self.account_sid!r}, auth={how}, base_url={self.base_url!r})"

    async def __aenter__(self) -> TwilioClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ paths
    @property
    def _account_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}"

    # ------------------------------------------------------------------ API
    async def send_sms(
        self,
        to: PhoneNumber | str,
        body: str,
        *,
        from_: PhoneNumber | str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> SmsResult:
        """Create a message (``POST …/Messages.json``). Sent once: never retried.

        Give ``from_`` (a Twilio number of the account) or ``messaging_service_sid``
        (or both: the service then uses that sender).
        """
        form: dict[str, str | list[str]] = {"To": _e164(to, 21211)}
        if from_ is None and not messaging_service_sid:
            title, fix = describe_code(21603)
            raise TwilioBadRequest(title, fix, code=21603)
        if from_ is not None:
            form["From"] = _e164(from_, 21212)
        if messaging_service_sid:
            if not _SERVICE_SID_RE.match(messaging_service_sid):
                title, fix = describe_code(21705)
                raise TwilioBadRequest(title, fix, code=21705)
            form["MessagingServiceSid"] = messaging_service_sid
        if not isinstance(body, str) or not body.strip():
            title, fix = describe_code(21602)
            raise TwilioBadRequest(title, fix, code=21602)
        form["Body"] = body
        if status_callback:
            form["StatusCallback"] = _check_url(status_callback, 21609)
        data = await self._post(f"{self._account_path}/Messages.json", form)
        sid = data.get("sid")
        if not isinstance(sid, str) or not _MESSAGE_SID_RE.match(sid):
            raise TwilioUnavailable(
                "Twilio: the answer to a message send had no message SID",
                "Check the Twilio Console's message log before sending again.",
                may_have_sent=True,
            )
        log.info("twilio message %s created (status %s)", sid, data.get("status"))
        return SmsResult(sid=sid, status=str(data.get("status") or "queued"), num_segments=_int(data.get("num_segments")))

    async def start_confirmation_call(
        self,
        to: PhoneNumber | str,
        *,
        from_: PhoneNumber | str,
        twiml_url: str | None = None,
        twiml: str | None = None,
        status_callback: str | None = None,
        status_callback_events: Sequence[str] = (),
        timeout: int | None = None,
    ) -> CallResult:
        """Place an outbound call (``POST …/Calls.json``) that runs ``twiml`` or the TwiML at ``twiml_url``.

        Exactly one of ``twiml_url`` and ``twiml``. Sent once: never retried.
        """
        if (twiml_url is None) == (twiml is None):
            raise BadRequest(
                "A confirmation call needs exactly one of a TwiML URL or TwiML",
                "Configure either the confirmation-call URL or its TwiML.",
            )
        form: dict[str, str | list[str]] = {"To": _e164(to, 21211), "From": _e164(from_, 21212)}
        if twiml_url is not None:
            form["Url"] = _check_url(twiml_url, 21205)
        else:
            form["Twiml"] = str(twiml)
        if status_callback:
            form["StatusCallback"] = _check_url(status_callback, 21609)
            if status_callback_events:
                form["StatusCallbackEvent"] = list(status_callback_events)
        if timeout is not None:
            form["Timeout"] = str(int(timeout))
        data = await self._post(f"{self._account_path}/Calls.json", form)
        sid = data.get("sid")
        if not isinstance(sid, str) or not _CALL_SID_RE.match(sid):
            raise TwilioUnavailable(
                "Twilio: the answer to a call request had no call SID",
                "Check the Twilio Console's call log before calling again.",
                may_have_sent=True,
            )
        log.info("twilio call %s created (status %s)", sid, data.get("status"))
        return CallResult(sid=sid, status=str(data.get("status") or "queued"), duration=_int(data.get("duration")))

    async def get_message(self, sid: str) -> MessageInfo:
        """Fetch a message (``GET …/Messages/{Sid}.json``), without its body. Retried when safe."""
        if not isinstance(sid, str) or not _MESSAGE_SID_RE.match(sid):
            raise TwilioBadRequest("Twilio: that is not a message SID", "Message SIDs start with SM or MM.")
        data = await self._get(f"{self._account_path}/Messages/{sid}.json")
        return MessageInfo(
            sid=str(data.get("sid") or sid),
            status=str(data.get("status") or "unknown"),
            direction=data.get("direction") if isinstance(data.get("direction"), str) else None,
            error_code=_int(data.get("error_code")),
            num_segments=_int(data.get("num_segments")),
            date_created=_rfc2822(data.get("date_created")),
            date_sent=_rfc2822(data.get("date_sent")),
            date_updated=_rfc2822(data.get("date_updated")),
            messaging_service_sid=data.get("messaging_service_sid")
            if isinstance(data.get("messaging_service_sid"), str)
            else None,
        )

    async def get_call(self, sid: str) -> CallResult:
        """Fetch a call's status (``GET …/Calls/{Sid}.json``). Retried when safe."""
        if not isinstance(sid, str) or not _CALL_SID_RE.match(sid):
            raise TwilioBadRequest("Twilio: that is not a call SID", "Call SIDs start with CA.")
        data = await self._get(f"{self._account_path}/Calls/{sid}.json")
        return CallResult(sid=str(data.get("sid") or sid), status=str(data.get("status") or "unknown"), duration=_int(data.get("duration")))

    async def check(self) -> AccountInfo:
        """Fetch the account (``GET /2010-04-01/Accounts/{Sid}.json``): proves the credentials work."""
        data = await self._get(f"{self._account_path}.json")
        return AccountInfo(
            sid=str(data.get("sid") or self.account_sid),
            friendly_name=data.get("friendly_name") if isinstance(data.get("friendly_name"), str) else None,
            status=data.get("status") if isinstance(data.get("status"), str) else None,
            type=data.get("type") if isinstance(data.get("type"), str) else None,
        )

    # ------------------------------------------------------------------ transport
    async def _post(self, path: str, form: Mapping[str, str | list[str]]) -> dict[str, Any]:
        failure: TwilioUnavailable | None = None
        try:
            response = await self._http.post(path, data=dict(form))
        except (httpx.ConnectError, httpx.ConnectTimeout):
            failure = TwilioUnavailable(
                "Twilio could not be reached; nothing was sent",
                "Check the network and the Twilio base URL; pa-tui will try again.",
                may_have_sent=False,
            )
        except httpx.TimeoutException:
            failure = TwilioUnavailable(
                "Twilio did not answer in time; the message or call may or may not have been sent",
                "Check the Twilio Console's log before sending again.",
                may_have_sent=True,
            )
        except httpx.HTTPError as exc:
            failure = TwilioUnavailable(
                f"Twilio connection failed ({type(exc).__name__}); the request may or may not have arrived",
                "Check the Twilio Console's log before sending again.",
                may_have_sent=True,
            )
        if failure is not None:
            # Raised outside the ``except``: the transport error (whose text can hold the URL) is not chained.
            raise failure
        return self._result(response, may_have_sent=True)

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, path: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        failure: TwilioUnavailable | None = None
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException:
            failure = TwilioUnavailable("Twilio did not answer in time", "Check the network; pa-tui will try again.")
        except httpx.HTTPError as exc:
            failure = TwilioUnavailable(
                f"Twilio could not be reached ({type(exc).__name__})",
                "Check the network and the Twilio base URL; pa-tui will try again.",
            )
        if failure is not None:
            raise failure  # outside the ``except``: nothing chained
        return self._result(response, may_have_sent=False)

    def _result(self, response: httpx.Response, *, may_have_sent: bool) -> dict[str, Any]:
        if response.is_success:
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise TwilioUnavailable(
                    "Twilio answered with something that is not JSON",
                    f"Check that the Twilio base URL points at the Twilio API ({PRODUCTION_URL}).",
                    status=response.status_code,
                    may_have_sent=may_have_sent,
                )
            return data
        code = _error_code(response)
        error = error_for(
            response.status_code, code, retry_after=_retry_after(response), may_have_sent=may_have_sent
        )
        log.warning(
            "twilio %s %s answered %s (code %s)",
            response.request.method,
            _log_path(response.request.url.path),
            response.status_code,
            code,
        )
        raise error


def _log_path(path: str) -> str:
    """A request path for the log: SIDs are not PHI, but keep only the resource part."""
    return path.split("/Accounts/", 1)[-1].split("/", 1)[-1] if "/Accounts/" in path else path


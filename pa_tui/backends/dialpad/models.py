"""Small typed views of Dialpad API v2 responses. Vendor JSON stops here.

Each ``from_api`` takes one decoded response object and keeps only what
pa-tui uses. Ids (64-bit; sent as strings or integers) become strings.
Secrets and URLs carrying tokens are :class:`~pydantic.SecretStr`, so they
never show in a ``repr`` or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from pa_tui.backends.dialpad.events import EventParseError, ms_to_datetime, parse_id, parse_payload
from pa_tui.domain.agents import DutyStatus
from pa_tui.domain.calls import CallEvent


def _str(raw: object) -> str | None:
    return raw.strip() if isinstance(raw, str) and raw.strip() else None


def _strs(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(x.strip() for x in raw if isinstance(x, str) and x.strip())


def _ids(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(i for i in (parse_id(x) for x in raw) if i)


class DialpadUser(BaseModel):
    """A Dialpad user (``schemas.user.UserProto``), trimmed."""

    model_config = ConfigDict(frozen=True)

    id: str
    display_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    emails: tuple[str, ...] = ()
    phone_numbers: tuple[str, ...] = ()
    office_id: str | None = None
    call_center_ids: tuple[str, ...] = ()
    state: str | None = None
    is_on_duty: bool | None = None
    on_duty_status: str | None = None
    duty_status_reason: str | None = None

    @property
    def name(self) -> str:
        full = " ".join(x for x in (self.first_name, self.last_name) if x)
        return self.display_name or full or f"User {self.id}"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> DialpadUser:
        user_id = parse_id(raw.get("id"))
        if user_id is None:
            raise ValueError("user without an id")
        groups = raw.get("group_details") if isinstance(raw.get("group_details"), list) else []
        centers = tuple(
            gid
            for g in groups
            if isinstance(g, Mapping) and g.get("group_type") == "callcenter"
            for gid in (parse_id(g.get("group_id")),)
            if gid
        )
        return cls(
            id=user_id,
            display_name=_str(raw.get("display_name")),
            first_name=_str(raw.get("first_name")),
            last_name=_str(raw.get("last_name")),
            emails=_strs(raw.get("emails")),
            phone_numbers=_strs(raw.get("phone_numbers")),
            office_id=parse_id(raw.get("office_id")),
            call_center_ids=centers,
            state=_str(raw.get("state")),
            is_on_duty=raw.get("is_on_duty") if isinstance(raw.get("is_on_duty"), bool) else None,
            on_duty_status=_str(raw.get("on_duty_status")),
            duty_status_reason=_str(raw.get("duty_status_reason")),
        )


class DialpadWebsocket(BaseModel):
    """A websocket event endpoint (``schemas.websocket.WebsocketProto``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    websocket_url: SecretStr | None = None  # carries a signed token: a credential
    secret: SecretStr | None = None
    signature_algo: str | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> DialpadWebsocket:
        ws_id = parse_id(raw.get("id"))
        if ws_id is None:
            raise ValueError("websocket without an id")
        signature = raw.get("signature") if isinstance(raw.get("signature"), Mapping) else {}
        url = _str(raw.get("websocket_url"))
        secret = signature.get("secret") if isinstance(signature.get("secret"), str) else None
        return cls(
            id=ws_id,
            websocket_url=SecretStr(url) if url else None,
            secret=SecretStr(secret) if secret else None,
            signature_algo=_str(signature.get("algo")),
        )


def _endpoint_id(raw: Mapping[str, Any]) -> str | None:
    for key in ("websocket", "webhook"):
        endpoint = raw.get(key)
        if isinstance(endpoint, Mapping):
            found = parse_id(endpoint.get("id"))
            if found:
                return found
    return parse_id(raw.get("endpoint_id"))


class CallSubscription(BaseModel):
    """A call-event subscription (``schemas.call_event_subscription.CallEventSubscriptionProto``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    endpoint_id: str | None = None
    endpoint_kind: str | None = None  # "websocket" | "webhook"
    call_states: tuple[str, ...] = ()  # empty: every state
    target_type: str | None = None
    target_id: str | None = None
    group_calls_only: bool = False
    enabled: bool = True

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> CallSubscription:
        sub_id = parse_id(raw.get("id"))
        if sub_id is None:
            raise ValueError("subscription without an id")
        kind = "websocket" if isinstance(raw.get("websocket"), Mapping) else (
            "webhook" if isinstance(raw.get("webhook"), Mapping) else None
        )
        return cls(
            id=sub_id,
            endpoint_id=_endpoint_id(raw),
            endpoint_kind=kind,
            call_states=_strs(raw.get("call_states")),
            target_type=_str(raw.get("target_type")),
            target_id=parse_id(raw.get("target_id")),
            group_calls_only=raw.get("group_calls_only") is True,
            enabled=raw.get("enabled") is not False,
        )

    def covers(self, states: tuple[str, ...] | None) -> bool:
        """True when this subscription delivers at least ``states`` (``None``: all states)."""
        if not self.call_states or "all" in self.call_states:
            return True
        if states is None:
            return False
        return set(states) <= set(self.call_states)


class AgentStatusSubscription(BaseModel):
    """An agent-status subscription (``schemas.agent_status_event_subscription.*Proto``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    endpoint_id: str | None = None
    agent_type: str | None = None
    enabled: bool = True

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> AgentStatusSubscription:
        sub_id = parse_id(raw.get("id"))
        if sub_id is None:
            raise ValueError("subscription without an id")
        return cls(
            id=sub_id,
            endpoint_id=_endpoint_id(raw),
            agent_type=_str(raw.get("agent_type")),
            enabled=raw.get("enabled") is not False,
        )


class DutyStatusInfo(BaseModel):
    """An operator's duty status (``schemas.group.OperatorDutyStatusProto``)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    on_duty: bool | None = None
    status: DutyStatus = DutyStatus.UNKNOWN
    raw_status: str | None = None
    reason: str | None = None
    status_started: datetime | None = None
    on_duty_started: datetime | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], user_id: str) -> DutyStatusInfo:
        raw_status = _str(raw.get("on_duty_status"))
        on_duty = raw.get("on_duty") if isinstance(raw.get("on_duty"), bool) else None
        status = DutyStatus.parse(raw_status)
        if status is DutyStatus.UNKNOWN and on_duty is not None:
            status = DutyStatus.AVAILABLE if on_duty else DutyStatus.UNAVAILABLE
        return cls(
            user_id=parse_id(raw.get("user_id")) or user_id,
            on_duty=on_duty,
            status=status,
            raw_status=raw_status,
            reason=_str(raw.get("duty_status_reason")),
            status_started=ms_to_datetime(raw.get("duty_status_started")),
            on_duty_started=ms_to_datetime(raw.get("on_duty_started")),
        )


def _int(raw: object) -> int | None:
    """An int64 sent as a JSON number or a string of digits."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    return None


def _float(raw: object) -> float | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


class DialpadWebhook(BaseModel):
    """A webhook event endpoint (``schemas.webhook.WebhookProto``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    hook_url: str | None = None
    secret: SecretStr | None = None
    signature_algo: str | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> DialpadWebhook:
        hook_id = parse_id(raw.get("id"))
        if hook_id is None:
            raise ValueError("webhook without an id")
        signature = raw.get("signature") if isinstance(raw.get("signature"), Mapping) else {}
        secret = signature.get("secret") if isinstance(signature.get("secret"), str) else None
        return cls(
            id=hook_id,
            hook_url=_str(raw.get("hook_url")),
            secret=SecretStr(secret) if secret else None,
            signature_algo=_str(signature.get("algo")),
        )


class DialpadCall(BaseModel):
    """One call leg as ``GET /api/v2/call/{id}`` reports it (``schemas.call.CallProto``).

    ``event`` is the same normalised view an event frame would give, so the
    console folds a looked-up call exactly like a streamed one.
    """

    model_config = ConfigDict(frozen=True)

    event: CallEvent
    operator_call_id: str | None = None
    duration_ms: float | None = None
    total_duration_ms: float | None = None

    @property
    def id(self) -> str:
        return self.event.call_id

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> DialpadCall:
        try:
            event = parse_payload({**raw, "call_id": raw.get("call_id")})
        except EventParseError as exc:
            raise ValueError(exc.title) from None
        if not isinstance(event, CallEvent):  # pragma: no cover - a call_id makes it a call event
            raise ValueError("not a call")
        return cls(
            event=event,
            operator_call_id=parse_id(raw.get("operator_call_id")) or None,
            duration_ms=_float(raw.get("duration")),
            total_duration_ms=_float(raw.get("total_duration")),
        )


class TransferResult(BaseModel):
    """What ``POST /api/v2/call/{id}/transfer`` answered (``schemas.call.TransferredCallProto``)."""

    model_config = ConfigDict(frozen=True)

    call_id: str | None = None
    transferred_to_number: str | None = None
    transferred_to_state: str | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> TransferResult:
        return cls(
            call_id=parse_id(raw.get("call_id")),
            transferred_to_number=_str(raw.get("transferred_to_number")),
            transferred_to_state=_str(raw.get("transferred_to_state")),
        )


class CallCenterStatus(BaseModel):
    """A call center's live status (``schemas.group.CallCenterStatusProto``)."""

    model_config = ConfigDict(frozen=True)

    call_center_id: str
    availability: str | None = None  # open, closed, holiday_open, holiday_closed
    availability_name: str | None = None
    capacity: int | None = None  # available operators
    longest_wait_seconds: int | None = None
    on_duty_operators: int | None = None
    pending: int | None = None  # calls waiting in the queue

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], call_center_id: str) -> CallCenterStatus:
        availability = raw.get("availability") if isinstance(raw.get("availability"), Mapping) else {}
        return cls(
            call_center_id=call_center_id,
            availability=_str(availability.get("status")),
            availability_name=_str(availability.get("name")),
            capacity=_int(raw.get("capacity")),
            longest_wait_seconds=_int(raw.get("longest_call_wait_time")),
            on_duty_operators=_int(raw.get("on_duty_operators")),
            pending=_int(raw.get("pending")),
        )


class UserStatus(BaseModel):
    """A user's status message (``schemas.user.SetStatusProto``)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    status_message: str | None = None
    expiration: int | None = None  # seconds; None: no expiry

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], user_id: str) -> UserStatus:
        return cls(
            user_id=parse_id(raw.get("id")) or user_id,
            status_message=raw.get("status_message") if isinstance(raw.get("status_message"), str) else None,
            expiration=_int(raw.get("expiration")),
        )


__all__ = [
    "AgentStatusSubscription",
    "CallCenterStatus",
    "CallSubscription",
    "DialpadCall",
    "DialpadUser",
    "DialpadWebhook",
    "DialpadWebsocket",
    "DutyStatusInfo",
    "TransferResult",
    "UserStatus",
]

"""The Twilio simulator in-process (httpx.ASGITransport): auth, validation codes, state, paging, knobs."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from pa_tui.demo.twilio_sim import (
    DEFAULT_ACCOUNT_SID as AC,
    DEFAULT_AUTH_TOKEN as TOKEN,
    DEFAULT_NUMBER as OURS,
    TwilioSimulator,
    num_segments,
)

MG = "MG" + "d" * 32
SK = "SK" + "e" * 32
KEY_SECRET = "sim-key-secret"
PATIENT = "+14085551212"
LANDLINE = "+12025550143"
BLOCKED = "+13035550111"
MESSAGES = f"/2010-04-01/Accounts/{AC}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{AC}/Calls.json"


def make_sim(**kwargs: object) -> TwilioSimulator:
    kwargs.setdefault("api_keys", {SK: KEY_SECRET})
    kwargs.setdefault("messaging_service_sid", MG)
    kwargs.setdefault("fail_numbers", {LANDLINE: 30006, BLOCKED: ("failed", 30034)})
    kwargs.setdefault("callback_delay", 0.0)
    kwargs.setdefault("seed", 7)
    return TwilioSimulator(**kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> TwilioSimulator:
    return make_sim()


@pytest.fixture
async def http(sim: TwilioSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="https://api.twilio.com", auth=(AC, TOKEN)
    ) as client:
        yield client
    await sim.aclose()


async def send(http: httpx.AsyncClient, **form: str) -> httpx.Response:
    form.setdefault("To", PATIENT)
    form.setdefault("From", OURS)
    form.setdefault("Body", "Reminder: Dr Lee, Tue 9:30. Reply C to confirm, R to reschedule.")
    return await http.post(MESSAGES, data={k: v for k, v in form.items() if v is not None})


def assert_twilio_error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert isinstance(body["message"], str) and body["message"]


# --------------------------------------------------------------------------- auth
async def test_account_sid_and_token(http: httpx.AsyncClient) -> None:
    response = await send(http)
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert body["status"] == "queued" and body["direction"] == "outbound-api"
    assert body["to"] == PATIENT and body["from"] == OURS and body["num_segments"] == "1"
    assert body["date_created"].endswith("+0000")


async def test_api_key_auth(sim: TwilioSimulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="https://x", auth=(SK, KEY_SECRET)) as c:
        assert (await send(c)).status_code == 201
        account = (await c.get(f"/2010-04-01/Accounts/{AC}.json")).json()
    assert account["auth_token"] is None and account["status"] == "active"


@pytest.mark.parametrize(
    "auth",
    [None, (AC, "wrong"), (SK, "wrong"), ("SK" + "f" * 32, KEY_SECRET), (AC, ""), ("", TOKEN)],
)
async def test_bad_credentials_get_20003(sim: TwilioSimulator, auth: tuple[str, str] | None) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="https://x", auth=auth) as c:
        response = await send(c)
    assert_twilio_error(response, 401, 20003)
    assert response.headers["www-authenticate"].startswith("Basic")
    assert sim.messages == []


async def test_garbage_authorization_header(sim: TwilioSimulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="https://x") as c:
        for header in ("Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
            assert_twilio_error(await c.get(MESSAGES, headers={"Authorization": header}), 401, 20003)


async def test_other_account_is_refused(http: httpx.AsyncClient) -> None:
    other = "AC" + "9" * 32
    assert_twilio_error(await http.get(f"/2010-04-01/Accounts/{other}/Messages.json"), 401, 20003)
    assert_twilio_error(await http.get("/2010-04-01/Accounts/ACnope/Messages.json"), 404, 20404)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": ""}, 21604),
        ({"To": "not-a-number"}, 21211),
        ({"To": "+1"}, 21211),
        ({"From": "", "MessagingServiceSid": None}, 21603),
        ({"From": "abc"}, 21212),
        ({"From": "+14085550000"}, 21606),
        ({"From": "", "MessagingServiceSid": "MG123"}, 21705),
        ({"From": "", "MessagingServiceSid": "MG" + "0" * 32}, 21701),
        ({"Body": ""}, 21602),
        ({"Body": "   "}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"Body": "😀" * 801}, 21617),
        ({"StatusCallback": "not a url"}, 21609),
        ({"StatusCallback": "http://bad_host.example/cb"}, 21609),
        ({"MediaUrl": "nope"}, 21620),
        ({"ProvideFeedback": "maybe"}, 400),
        ({"Attempt": "1.5"}, 400),
        ({"MaxPrice": "cheap"}, 400),
        ({"ContentRetention": "forever"}, 400),
        ({"ApplicationSid": "AP1"}, 400),
        ({"ContentSid": "HX" + "z" * 32}, 400),
    ],
)
async def test_message_validation_codes(http: httpx.AsyncClient, sim: TwilioSimulator, form: dict[str, str], code: int) -> None:
    assert_twilio_error(await send(http, **form), 400, code)
    assert sim.messages == []


async def test_body_of_exactly_1600_is_fine_and_counts_segments(http: httpx.AsyncClient) -> None:
    response = await send(http, Body="x" * 1600)
    assert response.status_code == 201 and response.json()["num_segments"] == str(num_segments("x" * 1600)) == "11"


def test_num_segments() -> None:
    assert num_segments("x" * 160) == 1
    assert num_segments("x" * 161) == 2
    assert num_segments("€" * 80) == 1  # extension characters count double: 160
    assert num_segments("é" * 160) == 1
    assert num_segments("ć" * 70) == 1  # not GSM-7: UCS-2
    assert num_segments("ć" * 71) == 2


async def test_unknown_parameters_are_ignored(http: httpx.AsyncClient) -> None:
    assert (await send(http, Bogus="1")).status_code == 201


async def test_json_body_is_not_a_form(http: httpx.AsyncClient) -> None:
    response = await http.post(MESSAGES, json={"To": PATIENT, "From": OURS, "Body": "hi"})
    assert_twilio_error(response, 400, 21604)


async def test_messaging_service_send(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    response = await send(http, From="", MessagingServiceSid=MG)
    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "accepted" and body["from"] is None and body["messaging_service_sid"] == MG
    await sim.drain()
    fetched = (await http.get(f"/2010-04-01/Accounts/{AC}/Messages/{body['sid']}.json")).json()
    assert fetched["status"] == "delivered" and fetched["from"] == OURS


# --------------------------------------------------------------------------- lifecycle
async def test_delivery_progression(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    ok = (await send(http)).json()["sid"]
    landline = (await send(http, To=LANDLINE)).json()["sid"]
    blocked = (await send(http, To=BLOCKED)).json()["sid"]
    await sim.drain()
    assert sim.message(ok).history == ["queued", "sent", "delivered"]  # type: ignore[union-attr]
    assert sim.message(landline).history == ["queued", "sent", "undelivered"]  # type: ignore[union-attr]
    assert sim.message(blocked).history == ["queued", "failed"]  # type: ignore[union-attr]
    fetched = (await http.get(f"/2010-04-01/Accounts/{AC}/Messages/{landline}.json")).json()
    assert fetched["status"] == "undelivered" and fetched["error_code"] == 30006 and fetched["error_message"]
    assert fetched["date_sent"] is not None


async def test_fetch_unknown_or_malformed_sid_is_20404(http: httpx.AsyncClient) -> None:
    assert_twilio_error(await http.get(f"/2010-04-01/Accounts/{AC}/Messages/SM{'0' * 32}.json"), 404, 20404)
    assert_twilio_error(await http.get(f"/2010-04-01/Accounts/{AC}/Messages/nope.json"), 404, 20404)
    assert_twilio_error(await http.get(f"/2010-04-01/Accounts/{AC}/Calls/CA{'0' * 32}.json"), 404, 20404)
    assert_twilio_error(await http.get("/2010-04-01/Nothing.json"), 404, 20404)
    assert_twilio_error(await http.delete(MESSAGES), 405, 20004)


async def test_stop_blocks_then_start_unblocks(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    assert (await send(http)).status_code == 201
    result = await sim.reply(PATIENT, " stop ", None)
    assert result.keyword == "STOP" and result.status_code is None
    assert sim.is_opted_out(PATIENT, OURS)
    assert_twilio_error(await send(http), 400, 21610)
    assert (await send(http, To="+14085551213")).status_code == 201  # only that number
    replies = [m for m in sim.messages if m.direction == "outbound-reply"]
    assert len(replies) == 1 and "unsubscribed" in replies[0].body
    inbound = [m for m in sim.messages if m.direction == "inbound"]
    assert inbound[0].from_ == PATIENT and inbound[0].to == OURS and inbound[0].status == "received"
    result = await sim.reply(PATIENT, "UNSTOP", None)
    assert result.keyword == "START" and not sim.is_opted_out(PATIENT)
    assert (await send(http)).status_code == 201


async def test_confirm_is_not_an_opt_out(sim: TwilioSimulator) -> None:
    result = await sim.reply(PATIENT, "C", None)
    assert result.keyword is None and not sim.is_opted_out(PATIENT)
    assert not [m for m in sim.messages if m.direction == "outbound-reply"]


async def test_control_opt_out_and_set_fail_numbers(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    sim.opt_out("(408) 555-1212")
    assert_twilio_error(await send(http), 400, 21610)
    sim.set_fail_numbers(["+14085551213"])
    sid = (await send(http, To="+14085551213")).json()["sid"]
    await sim.drain()
    assert sim.message(sid).status == "undelivered" and sim.message(sid).error_code == 30006  # type: ignore[union-attr]


# --------------------------------------------------------------------------- paging and filters
async def test_list_paging_and_filters(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    sids = [(await send(http, Body=f"m{i}")).json()["sid"] for i in range(5)]
    await send(http, To="+14085551213")
    await sim.drain()
    page0 = (await http.get(MESSAGES, params={"To": PATIENT, "PageSize": 2})).json()
    assert [m["sid"] for m in page0["messages"]] == sids[::-1][:2]  # newest first
    assert page0["page"] == 0 and page0["start"] == 0 and page0["end"] == 1 and page0["previous_page_uri"] is None
    page1 = (await http.get(page0["next_page_uri"])).json()
    assert [m["sid"] for m in page1["messages"]] == sids[::-1][2:4]
    assert page1["start"] == 2 and page1["end"] == 3
    page2 = (await http.get(page1["next_page_uri"])).json()
    assert [m["sid"] for m in page2["messages"]] == sids[:1] and page2["next_page_uri"] is None
    back = (await http.get(page2["previous_page_uri"])).json()
    assert [m["sid"] for m in back["messages"]] == sids[::-1][2:4]
    assert "To=%2B14085551212" in page0["next_page_uri"]
    assert len((await http.get(MESSAGES, params={"From": OURS})).json()["messages"]) == 6
    today = sim.messages[0].sent.date().isoformat()  # type: ignore[union-attr]
    assert len((await http.get(MESSAGES, params={"DateSent>": today})).json()["messages"]) == 6
    assert (await http.get(MESSAGES, params={"DateSent<": "2000-01-01"})).json()["messages"] == []


@pytest.mark.parametrize("params", [{"PageSize": "0"}, {"PageSize": "1001"}, {"Page": "-1"}, {"PageSize": "x"},
                                    {"PageToken": "PAnope"}, {"DateSent": "yesterday"}])
async def test_list_rejects_bad_paging(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert_twilio_error(await http.get(MESSAGES, params=params), 400, 400)


# --------------------------------------------------------------------------- knobs
async def test_down_is_503(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    sim.down = True
    assert_twilio_error(await send(http), 503, 20503)
    sim.down = False
    assert (await send(http)).status_code == 201


async def test_rate_limit_is_429(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    sim.rate_limit = 2
    sim.rate_window = 60
    sim.retry_after = 3
    assert (await send(http)).status_code == 201
    assert (await http.get(MESSAGES)).status_code == 200
    limited = await send(http)
    assert_twilio_error(limited, 429, 20429)
    assert limited.headers["retry-after"] == "3"
    sim.rate_limit = None
    assert (await send(http)).status_code == 201


async def test_latency(http: httpx.AsyncClient, sim: TwilioSimulator) -> None:
    import time

    sim.latency = 0.05
    start = time.monotonic()
    await http.get(MESSAGES)
    assert time.monotonic() - start >= 0.05


async def test_on_message_hook_and_request_log_without_bodies(sim: TwilioSimulator, http: httpx.AsyncClient) -> None:
    seen: list[str] = []
    sim.on_message = lambda m: seen.append(m.sid)
    sid = (await send(http)).json()["sid"]
    assert seen == [sid]
    assert sim.requests[-1] == ("POST", MESSAGES, 201)
    assert "Reminder" not in repr(sim.messages[0]) and PATIENT not in repr(sim.messages[0])


# --------------------------------------------------------------------------- calls
@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": ""}, 21201),
        ({"From": ""}, 21213),
        ({"To": "12"}, 21211),
        ({"From": "nope"}, 21212),
        ({"From": "+14085550000"}, 21210),
        ({"Url": "", "Twiml": ""}, 21205),
        ({"Url": "ftp://x.example/t"}, 21205),
        ({"Method": "PUT"}, 400),
        ({"Timeout": "soon"}, 400),
        ({"StatusCallbackEvent": "exploded"}, 400),
    ],
)
async def test_call_validation_codes(http: httpx.AsyncClient, form: dict[str, str], code: int) -> None:
    data = {"To": PATIENT, "From": OURS, "Url": "https://pa.example.org/twiml", **form}
    assert_twilio_error(await http.post(CALLS, data={k: v for k, v in data.items() if v}), 400, code)


async def test_call_lifecycle_and_outcomes(sim: TwilioSimulator, http: httpx.AsyncClient) -> None:
    sim.call_outcomes = {"+14085551213": "busy"}
    ok = (await http.post(CALLS, data={"To": PATIENT, "From": OURS, "Twiml": "<Response><Say>Hi</Say></Response>"})).json()
    busy = (await http.post(CALLS, data={"To": "+14085551213", "From": OURS, "Twiml": "<Response/>"})).json()
    assert ok["status"] == "queued" and ok["to_formatted"] == "(408) 555-1212" and ok["direction"] == "outbound-api"
    await sim.drain()
    assert sim.call(ok["sid"]).history == ["initiated", "ringing", "in-progress", "completed"]  # type: ignore[union-attr]
    assert sim.call(busy["sid"]).history == ["initiated", "ringing", "busy"]  # type: ignore[union-attr]
    fetched = (await http.get(f"/2010-04-01/Accounts/{AC}/Calls/{ok['sid']}.json")).json()
    assert fetched["status"] == "completed" and int(fetched["duration"]) >= 1 and fetched["end_time"]


async def test_verified_caller_id_can_call(http: httpx.AsyncClient) -> None:
    sim = make_sim(verified_caller_ids=["+14085550000"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="https://x", auth=(AC, TOKEN)) as c:
        response = await c.post(CALLS, data={"To": PATIENT, "From": "+14085550000", "Twiml": "<Response/>"})
    assert response.status_code == 201
    await sim.aclose()


def test_constructor_checks() -> None:
    with pytest.raises(ValueError):
        TwilioSimulator("AC123")
    with pytest.raises(ValueError):
        TwilioSimulator(numbers=["nope"])
    with pytest.raises(ValueError):
        TwilioSimulator(messaging_service_sid="MG1")
    with pytest.raises(ValueError):
        TwilioSimulator(fail_numbers={"+14085551212": ("sent", 1)})

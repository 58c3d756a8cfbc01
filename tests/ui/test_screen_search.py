"""SearchScreen: one input that understands what was typed, debounced queries, results, choosing."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from pa_tui.domain.search import QueryKind
from pa_tui.screens.search import SearchScreen
from tests.ui.test_screen_support import SIZES, SIZES_AND_THEMES, TODAY, ScreenHarness, family, screen_text, type_text

PATIENTS = family()


def harness(
    initial: str = "", *, masked: bool = False, show_mrn: bool = False, theme: str = "textual-dark"
) -> ScreenHarness:
    return ScreenHarness(
        lambda: SearchScreen(initial, TODAY, masked=masked, show_mrn=show_mrn),
        theme=theme,
    )


def screen(app: ScreenHarness) -> SearchScreen:
    assert isinstance(app.pushed, SearchScreen)
    return app.pushed


def queries(app: ScreenHarness) -> list[SearchScreen.QueryChanged]:
    return [m for m in app.messages if isinstance(m, SearchScreen.QueryChanged)]


def chosen(app: ScreenHarness) -> list[SearchScreen.PatientChosen]:
    return [m for m in app.messages if isinstance(m, SearchScreen.PatientChosen)]


async def answer(app: ScreenHarness, pilot: object, results: tuple = PATIENTS) -> None:
    """What the App's search worker does with a QueryChanged."""
    s = screen(app)
    s.searching = True
    await pilot.pause()  # type: ignore[attr-defined]
    s.results = results
    s.searching = False
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
async def test_debounced_query_then_results_then_enter_chooses(size: tuple[int, int]) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert "Type a name" in screen_text(app) and not queries(app)  # empty: a hint, no search
        for ch in "garcia":  # keystrokes well inside the 250 ms window
            await type_text(pilot, ch)
        assert "Searching by name" in screen_text(app)
        assert not queries(app)
        await pilot.pause(0.4)
        (q,) = queries(app)  # several keystrokes → one QueryChanged
        assert (q.query, q.kind, q.search_text) == ("garcia", QueryKind.NAME, "garcia")
        await answer(app, pilot)
        table = screen(app).query_one(DataTable)
        assert table.row_count == 3
        text = screen_text(app)
        assert "3 patients" in text
        row = next(line for line in text.splitlines() if "Maria Garcia" in line)
        for cell in ("03/14/1984", "42 y", "Female", "…1212", "•••••"):
            assert cell in row
        assert "00482913" not in text  # MRN masked unless show_mrn
        await pilot.press("down", "enter")
        await pilot.pause()
        (c,) = chosen(app)
        assert c.patient.id == "pat-2"


HINTS = [
    ("(408) 555-1212", QueryKind.PHONE, "Searching by phone number: (408) 555-1212"),
    ("3/14/84", QueryKind.DOB, "Searching by date of birth: March 14, 1984"),
    ("00482913", QueryKind.ID, "Searching by MRN or patient id"),
    ("Garcia, Maria", QueryKind.NAME, "Searching by name"),
    ("maria 14 mar 1984", QueryKind.NAME, "Searching by name and date of birth: maria, born 03/14/1984"),
    ("(408) 555", QueryKind.UNCLEAR, "Looks like part of a phone number"),
]


async def test_the_hint_says_what_kind_of_search_as_you_type() -> None:
    app = harness(initial=HINTS[0][0])  # a pre-filled query is searched at once, without the debounce
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        (q,) = queries(app)
        assert (q.kind, q.search_text) == (QueryKind.PHONE, "+14085551212")
        for typed, kind, hint in HINTS:
            await pilot.press("ctrl+u")
            await type_text(pilot, typed)
            assert hint in screen_text(app), typed
            await pilot.press("enter")  # search now rather than wait for the debounce
            await pilot.pause()
            if kind is QueryKind.UNCLEAR:
                assert queries(app)[-1].query != typed  # nothing to search for
            else:
                assert (queries(app)[-1].query, queries(app)[-1].kind) == (typed, kind)


NO_MATCH = [
    ("Garcia", "No patients match “Garcia” — try the last name only"),
    ("3/14/84", "No patients match “3/14/84” — check the month and day order"),
    ("4085550000", "No patients match “4085550000” — the number may not be on file"),
    ("MRN123", "No patients match “MRN123” — check the MRN digits"),
]


async def test_no_results_say_so_with_a_suggestion_per_kind() -> None:
    app = harness()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        for typed, suggestion in NO_MATCH:
            await pilot.press("ctrl+u")
            await type_text(pilot, typed)
            await pilot.press("enter")
            await pilot.pause()
            await answer(app, pilot, ())
            assert suggestion in screen_text(app), typed
            await pilot.press("enter")  # nothing to open
            await pilot.pause()
        assert not chosen(app) and len(queries(app)) == len(NO_MATCH)


async def test_clearing_the_query_clears_results_and_ignores_late_answers() -> None:
    app = harness(initial="garcia")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await answer(app, pilot)
        assert screen(app).query_one(DataTable).row_count == 3
        await pilot.press("ctrl+u")
        await pilot.pause(0.4)
        assert len(queries(app)) == 1 and screen(app).query_one(DataTable).row_count == 0
        assert "Type a name" in screen_text(app)
        await answer(app, pilot)  # the App's worker for "garcia" answered late
        assert screen(app).query_one(DataTable).row_count == 0


async def test_enter_while_typing_searches_now_and_never_opens_stale_results() -> None:
    app = harness(initial="garcia")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await answer(app, pilot)
        await pilot.press("end")  # a pre-filled query starts selected (typing replaces it): add to it
        await type_text(pilot, " luis")
        await pilot.press("enter")  # pending query: search now, don't open the old first row
        await pilot.pause()
        assert [q.search_text for q in queries(app)] == ["garcia", "garcia luis"] and not chosen(app)


async def test_duplicate_results_are_listed_once() -> None:
    app = harness(initial="garcia")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await answer(app, pilot, PATIENTS + PATIENTS[:1])
        assert screen(app).query_one(DataTable).row_count == 3 and "3 patients" in screen_text(app)


async def test_search_error_is_shown() -> None:
    app = harness(initial="garcia")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen(app).error = "EHR is down — try again in a minute"
        await pilot.pause()
        assert "✗ Search failed: EHR is down" in screen_text(app)
        await pilot.press("end")
        await type_text(pilot, " maria")
        await pilot.press("enter")  # a new search clears the old failure
        await answer(app, pilot, PATIENTS[:1])
        assert "Search failed" not in screen_text(app) and "1 patient" in screen_text(app)


async def test_show_mrn_reveals_the_mrn_column() -> None:
    app = harness(initial="garcia", show_mrn=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await answer(app, pilot)
        assert "00482913" in screen_text(app)
        screen(app).show_mrn = False
        await pilot.pause()
        assert "00482913" not in screen_text(app)


async def test_escape_goes_back_and_q_from_the_results() -> None:
    size = (80, 24)
    app = harness(initial="garcia")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await answer(app, pilot)
        await type_text(pilot, "q")  # typed into the query, not "back"
        assert app.results == []
        await pilot.press("tab")  # to the results
        await pilot.press("q")
        await pilot.pause()
        assert app.results == [None] and app.is_running
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.results == [None]


@pytest.mark.parametrize(("size", "theme"), SIZES_AND_THEMES)
async def test_privacy_mask_hides_names_dobs_numbers_and_mrns(size: tuple[int, int], theme: str) -> None:
    app = harness(masked=True, show_mrn=True, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await type_text(pilot, "3/14/84")
        await pilot.pause(0.4)
        assert queries(app)[0].search_text == "1984-03-14"  # the mask does not change the search
        await answer(app, pilot)
        text = screen_text(app)
        assert "Searching by date of birth" in text
        for secret in ("Maria", "Luis", "Garcia", "3/14/84", "03/14/1984", "March", "1212", "00482913"):
            assert secret not in text
        for shown in ("Patient 1", "Patient 3", "••/••/••••", "••••", "•••••", "42 y"):
            assert shown in text
        await answer(app, pilot, ())
        assert "No patients match this date of birth" in screen_text(app)

"""Property-based tests of the public booking pages (issue #5, point 8): random text, unicode,
huge values and control characters in every form field and every part of the slot URLs,
through the Flask test client over a real store.

The properties: never a server error, and never a booking from input that breaks the
published rules (name, e-mail, required answer, sizes, honeypot, offered length). Which
input is valid is decided here, independently of the form code.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from daemon.booking import service
from daemon.errors import UsageError
from daemon.mail import validate_address
from daemon.store import booking_links
from tests.web.conftest import csrf_tokens
from tests.web.test_booking_public import (bookings_count, form_data, home, host, later_slot,  # noqa: F401
                                           settings_for, slot_hrefs, text)
from webui import booking_forms

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
#: statuses a visitor may meet on these pages; anything else (above all 5xx) is a bug
CLIENT_ANSWERS = {200, 303, 308, 400, 404, 405, 409, 413, 429, 503}  # 308: werkzeug merges "//"

#: any character a browser can send (UTF-8 cannot carry lone surrogates)
CHARS = st.characters(codec="utf-8")
CONTROL = st.characters(max_codepoint=0x9F).filter(lambda c: ord(c) < 32 or ord(c) >= 127)
NASTY = st.sampled_from(["\x00", "\r\n", "\u2028", "\u202e", "\ufeff", "%00", "../", "<script>", "'\"", "\\",
                         "é", "𝔘", "🙂", "\u0301", " ", "@", ",", ";", "\t"])


def huge(max_size: int) -> st.SearchStrategy[str]:
    """One character repeated: large inputs without generating every character."""
    return st.builds(lambda c, n: c * n, CHARS, st.integers(0, max_size))


def field(valid: str, max_size: int = 400_000) -> st.SearchStrategy[str]:
    """A valid value, random text, nasty pieces, control characters or something huge."""
    return st.one_of(
        st.just(valid),
        st.text(CHARS, max_size=60),
        st.lists(st.one_of(NASTY, st.text(CHARS, max_size=5)), max_size=8).map("".join),
        st.builds(lambda a, c, b: a + c + b, st.just(valid), CONTROL, st.text(CHARS, max_size=3)),
        huge(max_size),
    )


_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def acceptable(data: dict[str, str]) -> bool:
    """The published rules for a booking, written out independently of webui/booking_forms.py."""
    # Whitespace at the ends (Python's idea of it, which includes \x1c-\x1f) is trimmed first.
    name, topic, notes = data["name"].strip(), data["q_topic"].strip(), data["q_notes"].strip()
    try:
        validate_address(data["email"])
    except UsageError:
        return False
    return (0 < len(name) <= 100 and not _BAD.search(name) and "\n" not in name and "\r" not in name
            and 0 < len(topic) <= 2000 and not _BAD.search(topic)
            and len(notes) <= 2000 and not _BAD.search(notes)
            and data["website"] == "" and data["duration"].strip() in ("30", "60"))


@pytest.fixture
def fuzz_link(store, host, home):  # noqa: F811 - the fixtures imported above
    return booking_links.create(store, host.id, settings_for(home), slug="intro")


@pytest.fixture
def no_limits(monkeypatch):
    # Valid bookings happen by chance here; the rate limits are tested on their own.
    monkeypatch.setattr(booking_forms, "ADDRESS_LIMIT", 10**9)
    monkeypatch.setattr(booking_forms, "EMAIL_LIMIT", 10**9)


@pytest.mark.usefixtures("no_limits")
def test_random_form_input_never_errors_and_never_books_what_the_rules_refuse(app, config, store, fuzz_link) -> None:
    client = app.test_client()
    href = later_slot(text(client.get("/book/intro")), hours=3)
    path = href.split("?")[0]
    page = text(client.get(href))
    base = form_data(page)
    seen = {"booked": 0, "refused": 0}

    @FUZZ
    @example(name="Vera Visitor", email="vera@example.org", topic="Our project", notes="", website="",
             duration="30", tz="Asia/Tokyo")
    @given(name=field("Vera Visitor"), email=field("vera@example.org"), topic=field("Our project"),
           notes=field(""), website=st.one_of(st.just(""), st.just(""), st.text(CHARS, max_size=20)),
           duration=st.one_of(st.sampled_from(["30", "60"]), st.text(CHARS, max_size=8)),
           tz=st.one_of(st.sampled_from(["America/New_York", "Asia/Tokyo"]), st.text(CHARS, max_size=40)))
    def check(name: str, email: str, topic: str, notes: str, website: str, duration: str, tz: str) -> None:
        data = {**base, "name": name, "email": email, "q_topic": topic, "q_notes": notes, "website": website,
                "duration": duration, "tz": tz}
        before = bookings_count(store)
        response = client.post(path, data=data)
        assert response.status_code in CLIENT_ANSWERS, (response.status_code, data)
        booked = bookings_count(store) - before
        if response.status_code == 303:
            token = response.location.rsplit("/", 1)[1]
            visitor = service.booking_by_token(store, token).visitor
            service.cancel_by_token(config, store, token)  # free the slot for the next example
            assert booked == 1 and acceptable(data), data
            assert not any(_BAD.search(v) for v in (visitor.name, visitor.email, *visitor.answers.values()))
            seen["booked"] += 1
        else:
            assert booked == 0, (response.status_code, data)
            seen["refused"] += 1

    check()
    assert seen["booked"] > 0 and seen["refused"] > 0  # both sides of the property were tried


SLOT_START = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: f"{d:%Y%m%dT%H%M}Z")


def segment(real: str) -> st.SearchStrategy[str]:
    """A path segment: the real one, or anything at all (percent-encoded as a browser would)."""
    return st.one_of(st.just(real), st.text(CHARS, min_size=1, max_size=60), huge(3000).filter(bool),
                     st.lists(NASTY, min_size=1, max_size=6).map("".join))


@pytest.mark.usefixtures("no_limits")
def test_random_slot_urls_never_error(app, config, store, fuzz_link) -> None:
    client = app.test_client()
    href = later_slot(text(client.get("/book/intro")), hours=3)
    real_start = href.split("/")[3].split("?")[0]
    token = re.fullmatch(r"/booking/(.+)", client.post(href.split("?")[0], data=form_data(
        text(client.get(href)))).location).group(1)
    csrf = csrf_tokens(text(client.get(f"/booking/{token}/cancel")))[0]
    query_value = st.one_of(st.none(), st.text(CHARS, max_size=40), huge(5000), NASTY,
                            st.sampled_from(["30", "60", "Asia/Tokyo", "2026-13-01", "9999-12-31", "0001-01-01"]))
    bookings_before = bookings_count(store)

    @FUZZ
    @given(key=segment("intro"), start=st.one_of(st.just(real_start), SLOT_START, segment(real_start)),
           tok=segment(token), duration=query_value, tz=query_value, week=query_value,
           which=st.integers(0, 6), method=st.sampled_from(["GET", "POST"]))
    def check(key: str, start: str, tok: str, duration: str | None, tz: str | None, week: str | None,
              which: int, method: str) -> None:
        k, s, t = (quote(x, safe="") for x in (key, start, tok))
        url = [f"/book/{k}", f"/book/{k}/{s}", f"/booking/{t}", f"/booking/{t}/invite.ics",
               f"/booking/{t}/cancel", f"/booking/{t}/reschedule", f"/booking/{t}/reschedule/{s}"][which]
        query = {name: value for name, value in (("duration", duration), ("tz", tz), ("from", week))
                 if value is not None}
        # POSTs carry a valid CSRF token but no booking fields: nothing may be booked by them.
        data = {"csrf_token": csrf} if method == "POST" and not (which == 4 and tok == token) else None
        response = client.open(url, method=method, query_string=query, data=data)
        assert response.status_code in CLIENT_ANSWERS, (response.status_code, method, url, query)
        if response.status_code == 200 and response.mimetype == "text/html":
            assert "</html>" in text(response)

    check()
    # Not one new booking from all that, and the real one still stands (a random start may
    # have moved it, which is allowed: the move needs a button press and a free time).
    assert bookings_count(store) == bookings_before
    assert service.booking_by_token(store, token).status == "confirmed"
    assert slot_hrefs(text(client.get("/book/intro")))

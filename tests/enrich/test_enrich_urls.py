"""read_url: path, UTM tags, click ids and the referrer's host, from URLs good and bad."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keystep.collector.pipeline import Context
from keystep.enrich.urls import CLICK_IDS, host_of, read_url

CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch", ip="203.0.113.9")


def read(**event: Any) -> dict[str, Any]:
    out = read_url({"event": "page_view", **event}, CONTEXT, [])
    assert isinstance(out, dict)
    return out


@pytest.mark.parametrize(("url", "path"), [
    ("https://shop.example/pricing?plan=pro#faq", "/pricing"),
    ("https://shop.example", "/"),  # an empty path is the root
    ("https://shop.example?utm_source=x", "/"),
    ("/checkout/step-2?x=1", "/checkout/step-2"),  # a path-only URL
    ("https://shop.example/caf%C3%A9", "/caf%C3%A9"),  # kept as sent
    ("  https://shop.example/a  ", "/a"),
])
def test_path_from_the_url(url: str, path: str) -> None:
    assert read(url=url)["path"] == path


def test_a_given_path_is_kept_and_a_blank_one_derived() -> None:
    assert read(url="https://shop.example/a", path="/given")["path"] == "/given"
    assert read(url="https://shop.example/a", path="  ")["path"] == "/a"


@pytest.mark.parametrize("url", ["not a url", "mailto:someone@example.com", "", 17, None])
def test_no_path_is_guessed_from_what_is_no_url(url: Any) -> None:
    assert "path" not in read(url=url)


def test_utm_parameters_fill_the_absent_columns_only() -> None:
    url = ("https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale"
           "&utm_term=shoes&utm_content=hero")
    out = read(url=url, utm_source="given", utm_medium="")
    assert out["utm_source"] == "given"  # the event's own value wins
    assert out["utm_medium"] == "email"  # blank counts as absent
    assert (out["utm_campaign"], out["utm_term"], out["utm_content"]) == ("spring sale", "shoes", "hero")


def test_utm_names_are_case_sensitive_and_blank_values_skipped() -> None:
    out = read(url="https://shop.example/?UTM_SOURCE=a&utm_medium=&utm_medium=%20cpc%20")
    assert "utm_source" not in out
    assert out["utm_medium"] == "cpc"  # the first non-blank value, stripped


def test_a_utm_value_is_cut_to_the_text_limit() -> None:
    assert read(url="https://shop.example/?utm_term=" + "t" * 2500)["utm_term"] == "t" * 2000


@pytest.mark.parametrize("name", CLICK_IDS)
def test_every_click_id_goes_into_properties(name: str) -> None:
    out = read(url=f"https://shop.example/?{name}=Cj0KCQ-abc_1&utm_source=x")
    assert out["properties"] == {"click_id_type": name, "click_id": "Cj0KCQ-abc_1"}


def test_the_brief_lists_ten_click_ids() -> None:
    assert set(CLICK_IDS) == {"gclid", "gbraid", "wbraid", "dclid", "fbclid", "msclkid", "ttclid", "li_fat_id",
                              "twclid", "yclid"}


def test_the_first_click_id_in_list_order_wins() -> None:
    out = read(url="https://shop.example/?fbclid=fb1&gclid=g1")
    assert out["properties"] == {"click_id_type": "gclid", "click_id": "g1"}


def test_click_ids_join_the_client_properties_without_overwriting() -> None:
    out = read(url="https://shop.example/?gclid=g1", properties={"plan": "pro"})
    assert out["properties"] == {"plan": "pro", "click_id_type": "gclid", "click_id": "g1"}
    out = read(url="https://shop.example/?gclid=g1", properties={"click_id": "mine"})
    assert out["properties"] == {"click_id": "mine"}
    out = read(url="https://shop.example/?gclid=g1", properties="[1]")  # not an object: left alone
    assert out["properties"] == "[1]"


def test_no_click_id_no_properties_added() -> None:
    assert "properties" not in read(url="https://shop.example/?gclid=")


@pytest.mark.parametrize(("referrer", "host"), [
    ("https://WWW.Google.com./search?q=shoes", "www.google.com"),
    ("http://news.ycombinator.com:8080/item?id=1", "news.ycombinator.com"),
    ("google.com/search?q=x", "google.com"),  # no scheme: read as a host
    ("android-app://com.google.android.gm/", "com.google.android.gm"),
    ("http://[2001:db8::1]/x", "2001:db8::1"),
    ("http://[::1", None),  # unbalanced bracket
    ("/relative/path", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_referrer_host(referrer: Any, host: str | None) -> None:
    assert read(referrer=referrer)["referrer_host"] == host
    assert host_of(referrer) == host


def test_a_malformed_url_yields_nothing_and_does_not_raise() -> None:
    out = read(url="http://[::1/?utm_source=x&gclid=y")
    assert "path" not in out and "utm_source" not in out and "properties" not in out


def test_the_ip_is_not_copied_anywhere() -> None:
    out = read(url="https://shop.example/?gclid=g", referrer="https://203.0.113.1/", ip="203.0.113.9")
    assert "203.0.113.9" not in repr({k: v for k, v in out.items() if k != "ip"})


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.one_of(st.none(), st.text()))
def test_read_url_never_raises(url: str, referrer: str, path: str | None) -> None:
    for prefix in ("", "http://", "https://[", "//", "/?"):
        read(url=prefix + url, referrer=prefix + referrer, path=path)

"""Timestamps: ISO 8601 with and without offset, epoch seconds and milliseconds, auto detection, errors.

Expected instants are computed independently with `calendar.timegm` and hand-written values."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystep.events.timestamps import TimestampError, TsFormat, parse_timestamp, parse_timestamps

NINE = datetime(2026, 3, 2, 9, 0, 0)
NINE_EPOCH = 1772442000  # `date -u -d 2026-03-02T09:00:00Z +%s`


def test_the_reference_epoch_is_right() -> None:
    assert calendar.timegm(NINE.timetuple()) == NINE_EPOCH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:00:00", NINE),  # no offset: UTC
        ("2026-03-02 09:00:00", NINE),
        ("2026-03-02T09:00:00Z", NINE),
        ("2026-03-02T10:30:00+01:30", NINE),
        ("2026-03-02T04:00:00-05:00", NINE),
        ("2026-03-01T23:00:00-10:00", NINE),  # the day before, elsewhere
        ("2026-03-02T09:00:00.250000", NINE + timedelta(milliseconds=250)),
        ("2026-03-02T09:00:00.123456789Z", NINE + timedelta(microseconds=123456)),  # truncated to µs
        ("2026-03-02", datetime(2026, 3, 2)),
        ("  2026-03-02T09:00:00Z ", NINE),
    ],
)
def test_iso_8601(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected
    assert parse_timestamp(text, TsFormat.ISO) == expected


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (NINE_EPOCH, TsFormat.AUTO, NINE),
        (str(NINE_EPOCH), TsFormat.AUTO, NINE),
        (NINE_EPOCH * 1000, TsFormat.AUTO, NINE),
        (f"{NINE_EPOCH}500", TsFormat.AUTO, NINE + timedelta(milliseconds=500)),
        (f"{NINE_EPOCH}.25", TsFormat.AUTO, NINE + timedelta(milliseconds=250)),
        (NINE_EPOCH + 0.5, TsFormat.SECONDS, NINE + timedelta(milliseconds=500)),
        (str(NINE_EPOCH), TsFormat.SECONDS, NINE),
        (str(NINE_EPOCH * 1000), TsFormat.MILLISECONDS, NINE),
        (f"{NINE_EPOCH * 1000}.5", TsFormat.MILLISECONDS, NINE + timedelta(microseconds=500)),
        # just under 1e11 is seconds; 4e9 seconds is in 2096
        (4_000_000_000, TsFormat.AUTO, datetime(2096, 10, 2, 7, 6, 40)),
        # 1e11 and above are milliseconds
        (1_500_000_000_000, TsFormat.AUTO, datetime(2017, 7, 14, 2, 40)),
    ],
)
def test_epoch_numbers(value: object, fmt: TsFormat, expected: datetime) -> None:
    assert parse_timestamp(value, fmt) == expected


def test_datetime_and_date_objects() -> None:
    paris_winter = timezone(timedelta(hours=1))
    assert parse_timestamp(datetime(2026, 3, 2, 10, 0, tzinfo=paris_winter)) == NINE
    assert parse_timestamp(NINE) == NINE
    assert parse_timestamp(date(2026, 3, 2)) == datetime(2026, 3, 2)
    assert parse_timestamp(NINE.replace(tzinfo=UTC)).tzinfo is None


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        ("", TsFormat.AUTO, "empty"),
        (None, TsFormat.AUTO, "empty"),
        ("yesterday", TsFormat.AUTO, "'yesterday' is not an ISO 8601 timestamp or an epoch number"),
        ("2026-13-01", TsFormat.AUTO, "'2026-13-01' is not an ISO 8601 timestamp or an epoch number"),
        ("1999-12-31T23:59:59Z", TsFormat.AUTO, "'1999-12-31T23:59:59Z' is outside 2000-01-01..2100-01-01"),
        ("2100-01-01", TsFormat.AUTO, "'2100-01-01' is outside 2000-01-01..2100-01-01"),
        (True, TsFormat.AUTO, "True is not a timestamp"),
        (float("nan"), TsFormat.AUTO, "nan is not a finite number"),
        (str(NINE_EPOCH), TsFormat.ISO, f"'{NINE_EPOCH}' is a number, not an ISO 8601 timestamp"),
        ("2026-03-02", TsFormat.SECONDS, "'2026-03-02' is not a number of epoch seconds"),
        ("2026-03-02", TsFormat.MILLISECONDS, "'2026-03-02' is not a number of epoch milliseconds"),
        (
            NINE_EPOCH,
            TsFormat.MILLISECONDS,
            f"{NINE_EPOCH} read as epoch milliseconds is 1970-01-21T12:20:42, outside 2000-01-01..2100-01-01 "
            "(another unit or format?)",
        ),
        ("1e300", TsFormat.AUTO, "'1e300' read as epoch milliseconds is out of range"),
    ],
)
def test_errors_say_what_was_wrong(value: object, fmt: TsFormat, reason: str) -> None:
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(value, fmt)
    assert str(caught.value) == reason


def test_a_column_keeps_errors_in_place() -> None:
    parsed = parse_timestamps(["2026-03-02T09:00:00Z", "bad", NINE_EPOCH])
    assert parsed[0] == NINE
    assert isinstance(parsed[1], TimestampError)
    assert parsed[2] == NINE


moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _epoch_micros(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple()) * 1_000_000 + moment.microsecond


@given(moments, offsets)
def test_iso_renderings_parse_back_to_the_same_instant(moment: datetime, offset: timezone) -> None:
    assert parse_timestamp(moment.isoformat()) == moment
    assert parse_timestamp(moment.isoformat(sep=" ") + "Z") == moment
    local = moment.replace(tzinfo=UTC).astimezone(offset)
    assert parse_timestamp(local.isoformat(), TsFormat.ISO) == moment


@given(moments)
def test_epoch_renderings_parse_back_to_the_same_instant(moment: datetime) -> None:
    micros = _epoch_micros(moment)
    seconds_text = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
    millis_text = f"{micros // 1000}.{micros % 1000:03d}"
    assert parse_timestamp(seconds_text) == moment
    assert parse_timestamp(seconds_text, TsFormat.SECONDS) == moment
    assert parse_timestamp(millis_text) == moment
    assert parse_timestamp(millis_text, TsFormat.MILLISECONDS) == moment
    whole = moment.replace(microsecond=0)
    assert parse_timestamp(micros // 1_000_000) == whole
    assert parse_timestamp(micros // 1000) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_timestamp(str(micros // 1000), TsFormat.AUTO) == parse_timestamp(micros // 1000)

"""One duration syntax (CLI, API, config, rules, feed intervals) and one Retry-After reader."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.config import Settings
from shared.durations import DurationError, parse_duration, parse_moment
from shared.errors import ConfigError
from shared.retry_after import MAX_SECONDS, parse_retry_after
from tests.conftest import run_cli

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("48h", 172800.0), ("7d", 604800.0),
     ("2w", 1209600.0), ("1.5h", 5400.0), (" 12 H ", 43200.0), ("0", 0.0),
     ("9999999999d", DurationError), ("99999999999999999999", DurationError), ("-5m", DurationError),
     ("5y", DurationError), ("1e3", DurationError), ("inf", DurationError), ("", DurationError),
     (True, DurationError), (float("nan"), DurationError), (-1, DurationError), ("٣d", DurationError)],
)
def test_duration_table(value: str | float, seconds: float | type[Exception]) -> None:
    """Seconds, or a number with s, m, h, d or w; negative, unknown units and over a century are refused."""
    if isinstance(seconds, type):
        with pytest.raises(seconds):
            parse_duration(value)
    else:
        assert parse_duration(value) == seconds


def test_a_moment_is_a_duration_ago_or_a_date() -> None:
    """``7d`` is seven days before now; an ISO 8601 date stands for itself; nonsense says what to write."""
    assert parse_moment("7d", NOW) == datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    assert parse_moment("2026-10-01T00:00:00Z", NOW) == datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(DurationError, match="ISO 8601"):
        parse_moment("yesterday", NOW)
    with pytest.raises(DurationError, match="longer than a century"):
        parse_moment("9999999999d", NOW)


@pytest.mark.parametrize(("argv", "says"), [(("clicks", "list", "--since", "2w"), None),
                                             (("clicks", "list", "--since", "9999999999d"), "longer than a century"),
                                             (("feeds", "add", "f", "x.txt", "--format", "plain", "--every", "1w"),
                                              None)])
def test_cli_reads_the_same_syntax(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: object, argv: tuple[str, ...], says: str | None) -> None:
    """The command line takes weeks like everywhere else and refuses what is out of range with exit 2."""
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path))
    code, _, err = run_cli(capsys, *argv, *(("--no-update",) if argv[0] == "feeds" else ()))
    if says is None:
        assert code == 0, err
    else:
        assert code == 2 and says in err


def test_config_seconds_take_the_same_syntax(make_settings: Callable[..., Settings]) -> None:
    """Settings in seconds accept ``2h`` and friends, and refuse what the parser refuses, naming the key."""
    assert make_settings(feed_every_default="2h", scan_timeout="90s").feed_every_default == 7200.0
    with pytest.raises(ConfigError, match="SAFELINKS_FEED_EVERY_DEFAULT"):
        make_settings(feed_every_default="soon")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("Sun, 01 Nov 2026 12:01:30 GMT", 90.0),
     ("Sun, 01 Nov 2026 11:00:00 GMT", 0.0), ("99999999999999999999", MAX_SECONDS), ("100000", MAX_SECONDS),
     ("1e3", None), ("inf", None), ("nan", None), ("-5", None), ("1.5", None), ("soon", None), ("", None),
     (None, None), ("Sun, 01 Nov 2026 12:01:30", None), ("٣", None)],
)
def test_retry_after_table(header: str | None, seconds: float | None) -> None:
    """Delay-seconds or an HTTP-date, capped at a day; anything else is ignored, never trusted."""
    assert parse_retry_after(header, now=NOW.timestamp()) == seconds

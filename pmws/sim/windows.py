"""Window arithmetic, slugs and titles of the up/down markets (PROTOCOL.md §6.3). Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
WINDOW_SECONDS = {"5m": 300, "15m": 900, "1h": 3600, "4h": 14400}
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def align(window: str, t: float) -> int:
    """Start (epoch s) of the `window` containing `t`.

    5m/15m/1h align to multiples of the duration (ET offsets are whole hours, so 1h is also an ET hour).
    4h windows start at 0/4/8/12/16/20h New York time: `btc-updown-4h-1772442000` is 4:00AM EST (§6.3, [P7]).
    """
    if window == "4h":
        local = datetime.fromtimestamp(t, NEW_YORK)
        start = local.replace(hour=local.hour - local.hour % 4, minute=0, second=0, microsecond=0)
        return int(start.timestamp())
    seconds = WINDOW_SECONDS[window]
    epoch = int(t)
    return epoch - epoch % seconds


def following(window: str, start: int) -> int:
    """Start of the window after the one starting at `start` (= its end); DST-safe for 4h."""
    nxt = align(window, start + WINDOW_SECONDS[window])
    if nxt <= start:  # a 5-hour 4h window on the autumn DST day
        nxt = align(window, start + WINDOW_SECONDS[window] + 3600)
    return nxt


def preceding(window: str, start: int) -> int:
    """Start of the window before the one starting at `start`."""
    return align(window, start - 1)


def btc_slug(window: str, start: int) -> str:
    """`btc-updown-{5m|15m|4h}-{start}` or the hourly `bitcoin-up-or-down-…-{h}{am|pm}-et` (§6.3)."""
    if window == "1h":
        local = datetime.fromtimestamp(start, NEW_YORK)
        hour12, ampm = _hour12(local)
        month = MONTHS[local.month - 1]
        return f"bitcoin-up-or-down-{month}-{local.day}-{local.year}-{hour12}{ampm.lower()}-et"
    return f"btc-updown-{window}-{start}"


def updown_title(asset_name: str, window: str, start: int, end: int) -> str:
    """`Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET`; hourly: `Bitcoin Up or Down - August 16, 2PM ET`."""
    local = datetime.fromtimestamp(start, NEW_YORK)
    day = f"{MONTHS[local.month - 1].capitalize()} {local.day}"
    if window == "1h":
        hour12, ampm = _hour12(local)
        return f"{asset_name} Up or Down - {day}, {hour12}{ampm} ET"
    return f"{asset_name} Up or Down - {day}, {_clock_text(start)}-{_clock_text(end)} ET"


def iso_z(t: float, *, micro: bool = False) -> str:
    """UTC ISO 8601 with a Z, like Gamma: `2026-03-12T09:25:00Z` or with microseconds."""
    dt = datetime.fromtimestamp(t, UTC)
    text = dt.isoformat(timespec="microseconds" if micro else "seconds")
    return text.replace("+00:00", "Z")


def _hour12(local: datetime) -> tuple[int, str]:
    """(1-12, AM|PM) of a local time."""
    return local.hour % 12 or 12, "AM" if local.hour < 12 else "PM"


def _clock_text(t: int) -> str:
    """`5:20AM` in New York time."""
    local = datetime.fromtimestamp(t, NEW_YORK)
    hour12, ampm = _hour12(local)
    return f"{hour12}:{local.minute:02d}{ampm}"

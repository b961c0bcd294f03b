"""What a config value may be: one rule a key (`config.RULES`), each naming the problem in words. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Between", "Flag", "OneOf", "Rule", "Text", "Url", "number"]


@dataclass(frozen=True)
class Between:
    """A number from `low` to `high`, inclusive."""

    low: float
    high: float

    def problem(self, value: Any) -> str | None:
        ok = self.low <= value <= self.high
        return None if ok else f"must be between {number(self.low)} and {number(self.high)}, got {value!r}"

    def describe(self) -> str:
        return f"{number(self.low)}–{number(self.high)}"


def number(value: float) -> str:
    """3600, 0.5 — never 3.6e+03."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class OneOf:
    """One of `choices` (for a list: a non-empty list of them)."""

    choices: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in self.choices]
        if bad or not values:
            listed = "a list of " if isinstance(value, list) else ""
            return f"must be {listed}one of {', '.join(self.choices)}, got {value!r}"
        return None


@dataclass(frozen=True)
class Url:
    """An absolute URL with one of `schemes` and a host."""

    schemes: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises for a port that is not a number in 0..65535
        except ValueError:  # an unclosed [IPv6 literal, a bad port
            parts, host = None, None
        blank = isinstance(value, str) and any(c.isspace() for c in value)
        if parts is not None and parts.scheme.lower() in self.schemes and host and not blank:
            return None
        return (
            f"must be a {' or '.join(s + '://' for s in self.schemes)} URL with a host (and a port in "
            f"1..65535, no spaces), got {value!r}"
        )


@dataclass(frozen=True)
class Text:
    """One line of text (a path, a name); empty only when `optional`."""

    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if not value and not self.optional:
            return "must not be empty"
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            return f"must be one line without control characters, got {value!r}"
        return None


@dataclass(frozen=True)
class Flag:
    """true or false (the type check says it all)."""

    def problem(self, value: Any) -> str | None:
        return None


Rule = Between | OneOf | Url | Text | Flag

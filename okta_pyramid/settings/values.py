"""Reading one ``okta.*`` key: the table's row (:class:`Setting`), the kinds of value
a key may hold, and :class:`Values`, which converts each key once."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from pyramid.settings import aslist, falsey, truthy

PREFIX = "okta."


def refuse_unknown_keys(settings: Mapping[str, Any], prefix: str, known: Collection[str]) -> None:
    """Refuse a key under ``prefix`` that is not in ``known``, naming the closest one."""
    for key in sorted(k for k in settings if isinstance(k, str) and k.startswith(prefix)):
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"did you mean {close[0]}?" if close else "remove it or correct its name"
        raise ConfigurationError(f"{key}: is not a setting of okta_pyramid; {hint}")


#: Converts the value of ``key`` (``values.settings.get(key)``, ``None`` when unset)
#: into what the parser keeps, the default when unset, or raises ConfigurationError
#: naming ``key``.
Convert = Callable[["Values", str], Any]


@dataclass(frozen=True)
class Setting:
    """One ``okta.*`` key, declared once: its name and how its value is read."""

    #: The key without its prefix: ``leeway`` for ``okta.leeway``.
    name: str
    #: Reads, checks and converts the value; holds the default.
    convert: Convert
    #: ``True``: :class:`OktaSettings` has a field of this name, which takes the value
    #: as is. ``False``: the value is a part of the issuers or of introspection,
    #: assembled by :func:`parse_settings`.
    is_field: bool = True

    @property
    def key(self) -> str:
        return PREFIX + self.name


class Values:
    """The ``okta.*`` values of one settings mapping, each converted by its
    :class:`Setting` on first use and kept: a key is checked once, however many
    parts of the parser need it."""

    def __init__(self, settings: Mapping[str, Any], table: Mapping[str, Setting]) -> None:
        self.settings = settings
        self._table = table
        self._converted: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._converted:
            setting = self._table[name]
            self._converted[name] = setting.convert(self, setting.key)
        return self._converted[name]


def text(raw: Any) -> str | None:
    """A value without its surrounding spaces; ``None`` when unset or blank."""
    value = str(raw).strip() if raw is not None else ""
    return value or None


def optional_text(values: Values, key: str) -> str | None:
    return text(values.settings.get(key))


def words(values: Values, key: str) -> tuple[str, ...]:
    """Words separated by spaces or line breaks; none when unset."""
    return tuple(aslist(values.settings.get(key) or ""))


def check_one_word(value: str, key: str, what: str) -> str:
    if len(value.split()) != 1 or not value.isprintable():
        raise ConfigurationError(f"{key}: must be one {what}, got {value[:40]!r}")
    return value


@dataclass(frozen=True)
class OneWord:
    """One word, such as an id; ``None`` when unset."""

    #: What the word is, for the message: ``client id``.
    what: str

    def __call__(self, values: Values, key: str) -> str | None:
        value = text(values.settings.get(key))
        return None if value is None else check_one_word(value, key, self.what)


@dataclass(frozen=True)
class Number:
    """A number of ``unit`` from ``minimum`` to ``maximum``; ``default`` when unset."""

    default: float
    minimum: float
    maximum: float | None = None
    #: A whole number, returned as an ``int``.
    integer: bool = False
    unit: str = "seconds"

    def __call__(self, values: Values, key: str) -> float:
        value = self._read(values.settings.get(key), key)
        return int(value) if self.integer else value

    def _read(self, raw: Any, key: str) -> float:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        try:
            value = int(str(raw).strip()) if self.integer else float(str(raw).strip())
        except ValueError:
            kind = "a whole number" if self.integer else "a number"
            raise ConfigurationError(f"{key}: must be {kind} of {self.unit}, got {raw!r}") from None
        maximum = self.maximum
        if value != value or value < self.minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum:g}" if maximum is not None else ""
            raise ConfigurationError(
                f"{key}: must be at least {self.minimum:g}{upper} {self.unit}, got {raw!r}"
            )
        return value


@dataclass(frozen=True)
class Boolean:
    """true or false, as Pyramid spells them (yes, on, 1...); ``default`` when unset."""

    default: bool

    def __call__(self, values: Values, key: str) -> bool:
        raw = values.settings.get(key)
        if raw is None or raw == "":
            return self.default
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in truthy:
            return True
        if word in falsey:
            return False
        raise ConfigurationError(f"{key}: must be true or false, got {raw!r}")


@dataclass(frozen=True)
class ClaimName:
    """The name of one claim; ``default`` when unset."""

    default: str

    def __call__(self, values: Values, key: str) -> str:
        value = str(values.settings.get(key) or "").strip() or self.default
        if len(value.split()) != 1 or not value.isprintable():
            raise ConfigurationError(f"{key}: must be one claim name, got {value!r}")
        return value


def required_claims(values: Values, key: str) -> tuple[tuple[str, str | None], ...]:
    """One per line, ``name`` or ``name = value``."""
    raw = values.settings.get(key) or ""
    lines = raw if isinstance(raw, (list, tuple)) else aslist(raw, flatten=False)
    return tuple(requirement(key, str(line)) for line in lines)


def dotted_callable(values: Values, key: str) -> Callable[..., Any] | None:
    """A callable, or its dotted name; ``None`` when unset."""
    raw = values.settings.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = DottedNameResolver().maybe_resolve(raw.strip() if isinstance(raw, str) else raw)
    except (ImportError, ValueError, AttributeError) as exc:
        raise ConfigurationError(
            f"{key}: cannot import {raw!r} ({exc}); give a dotted name such as "
            f"myapp.security.principals or myapp.security:principals"
        ) from None
    if not callable(value):
        raise ConfigurationError(f"{key}: {raw!r} is not callable")
    return value


def requirement(key: str, text: str) -> tuple[str, str | None]:
    """``name`` or ``name = value`` (or ``name=value``) as a required claim."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not name or len(name.split()) != 1 or not name.isprintable():
        raise ConfigurationError(
            f"{key}: each line must be a claim name, or 'name = value', got {text!r}"
        )
    if equals and not value:
        raise ConfigurationError(
            f"{key}: the value after '=' is empty in {text!r}; write only the "
            f"name to require that the claim is present"
        )
    return name, value if equals else None

"""The grammar of ``okta.issuer``: one trusted authorization server a line,
``ISSUER [AUDIENCE ...] [option=value ...]``, each line checked and named."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pyramid.exceptions import ConfigurationError
from pyramid.settings import truthy

from ..tokens.verifier import DEFAULT_AUDIENCE
from .model import IssuerSettings
from .urls import (
    check_issuer_url,
    check_no_trailing_slash,
    check_not_org_server,
    is_org_server,
    looks_like_okta_issuer,
)
from .values import Values, requirement


def issuer_lines(values: Values, key: str) -> list[str]:
    """``okta.issuer``: one trusted authorization server a line; required."""
    raw = values.settings.get(key) or ""
    lines = raw if isinstance(raw, (list, tuple)) else str(raw).splitlines()
    lines = [str(line).strip() for line in lines if str(line).strip()]
    if not lines:
        raise ConfigurationError(
            "okta.issuer: is required; set it to your authorization server's "
            "issuer URI, e.g. https://dev-123456.okta.com/oauth2/default"
        )
    return lines


@dataclass(frozen=True)
class IssuerDefaults:
    """What an ``okta.issuer`` line that does not say otherwise takes."""

    audiences: tuple[str, ...]
    client_ids: tuple[str, ...]
    required_claims: tuple[tuple[str, str | None], ...]
    introspection: bool
    production: bool


# A field is an option when a bare name precedes its "="; an audience such as
# https://api.example.com/?v=1 is not mistaken for one. Any bare name counts, so a
# misspelt option (client-ids=, OPAQUE=) is refused rather than taken for an audience.
_OPTION = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=(.*)")


@dataclass
class _Line:
    """One ``okta.issuer`` line as its fields are read: what it says so far."""

    key: str
    issuer: str
    org_server: bool
    defaults: IssuerDefaults
    audiences: list[str]
    client_ids: tuple[str, ...]
    required: list[tuple[str, str | None]]
    opaque: bool = False
    #: The options given so far.
    seen: set[str] = field(default_factory=set)


def _issuer_line(line: str, key: str, defaults: IssuerDefaults) -> IssuerSettings:
    """One line of ``okta.issuer``: ``ISSUER [AUDIENCE ...] [option=value ...]``."""
    issuer, *fields = line.split()
    parsed = _Line(
        key=key,
        issuer=issuer,
        org_server=_issuer(issuer, key, defaults),
        defaults=defaults,
        audiences=[],
        client_ids=defaults.client_ids,
        required=list(defaults.required_claims),
    )
    for word in fields:
        _field(parsed, word)
    # The org authorization server cannot be given an audience: its tokens carry the org's.
    return IssuerSettings(
        issuer=issuer,
        audiences=_audiences(parsed),
        client_ids=parsed.client_ids,
        required_claims=tuple(parsed.required),
        org_server=parsed.org_server and defaults.introspection,
        opaque=parsed.opaque,
    )


def _issuer(issuer: str, key: str, defaults: IssuerDefaults) -> bool:
    """Check the issuer URI that starts a line; whether it is Okta's org server."""
    if issuer.count("://") > 1:
        # "A,B" (a list written the usual way) would start as one URL that no iss is.
        raise ConfigurationError(
            f"{key}: {issuer[:200]!r} holds two issuer URIs; put each issuer on a line of its own"
        )
    check_issuer_url(issuer, key)
    org_server = is_org_server(issuer, key)
    if not defaults.introspection:
        check_not_org_server(issuer, key)
    if org_server:
        _check_bare_org_url(issuer, key)
    else:
        check_no_trailing_slash(issuer, key)
    return org_server


def _check_bare_org_url(issuer: str, key: str) -> None:
    parts = urlsplit(issuer)
    if parts.path:
        raise ConfigurationError(
            f"{key}: the Okta org authorization server's issuer is the bare org URL "
            f"(the iss of its tokens): write {parts.scheme}://{parts.netloc}"
        )


def _field(line: _Line, text: str) -> None:
    """A field after the issuer: an option (``name=value``), else an audience."""
    option = _OPTION.fullmatch(text)
    if option is None:
        line.audiences.append(_audience(text, line.key))
        return
    name, value = option.groups()
    _check_option(line, name)
    _OPTIONS[name](line, value)


def _audience(text: str, key: str) -> str:
    if text.startswith(("#", ";")):
        # An ini value has no inline comments: its words would be audiences.
        raise ConfigurationError(
            f"{key}: {text[:40]!r} starts a comment, but an ini value has none: "
            f"every word after it would be an audience; put the comment on a "
            f"line of its own"
        )
    if looks_like_okta_issuer(text):
        raise ConfigurationError(
            f"{key}: {text[:200]!r} after the issuer looks like another issuer "
            f"URI, not an audience; put each issuer on a line of its own"
        )
    return text


def _check_option(line: _Line, name: str) -> None:
    """Refuse an option that does not exist, or that is given twice."""
    if name not in ISSUER_OPTIONS:
        close = difflib.get_close_matches(name.lower().replace("-", "_"), ISSUER_OPTIONS, n=1)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else (f"the options are {', '.join(ISSUER_OPTIONS)}")
        )
        raise ConfigurationError(
            f"{line.key}: {name[:40]!r} is not an option of an issuer line; {hint}"
        )
    if name not in _REPEATABLE_OPTIONS and name in line.seen:
        raise ConfigurationError(f"{line.key}: the option {name} is given twice")
    line.seen.add(name)


def _client_ids_option(line: _Line, value: str) -> None:
    """``client_ids=a,b``: this issuer's clients, instead of okta.client_ids."""
    line.client_ids = tuple(filter(None, value.split(",")))
    if not line.client_ids:
        raise ConfigurationError(
            f"{line.key}: client_ids= needs one or more client ids, separated by commas"
        )


def _require_option(line: _Line, value: str) -> None:
    """``require=name`` or ``require=name=value``: a claim, besides okta.required_claims."""
    line.required.append(requirement(line.key, value))


def _opaque_option(line: _Line, value: str) -> None:
    """``opaque=true``: tokens that are not JWTs are introspected at this issuer."""
    key = line.key
    if value.lower() not in truthy:
        raise ConfigurationError(
            f"{key}: opaque= takes only true (leave it out otherwise), got {value[:20]!r}"
        )
    if not line.defaults.introspection:
        raise ConfigurationError(
            f"{key}: opaque=true needs token introspection: set "
            f"okta.introspection_client_id and its credentials"
        )
    if line.org_server:
        # Its access tokens are JWTs; what it issues otherwise (refresh
        # tokens) introspects as active but must not open the API.
        raise ConfigurationError(
            f"{key}: opaque=true: the Okta org authorization server's access "
            f"tokens are JWTs; leave opaque= out of this line"
        )
    line.opaque = True


#: The options of an ``okta.issuer`` line (``name=value`` fields after the URL), and
#: what each does to the line.
_OPTIONS: dict[str, Callable[[_Line, str], None]] = {
    "client_ids": _client_ids_option,
    "require": _require_option,
    "opaque": _opaque_option,
}


ISSUER_OPTIONS = tuple(_OPTIONS)
#: The options a line may give more than once.
_REPEATABLE_OPTIONS = frozenset({"require"})


def _audiences(line: _Line) -> tuple[str, ...]:
    """The line's audiences, else okta.audience's, else the default."""
    audiences = line.audiences or list(line.defaults.audiences)
    if not audiences and line.defaults.production:
        _refuse_default_audience(line)
    return tuple(dict.fromkeys(audiences)) or (
        (line.issuer,) if line.org_server else (DEFAULT_AUDIENCE,)
    )


def _refuse_default_audience(line: _Line) -> None:
    # The default, api://default, is shared by every API on Okta's default
    # authorization server (RFC 9068 §4, RFC 8707): production must choose.
    where = (
        f"the org authorization server's tokens have {line.issuer}"
        if line.org_server
        else "in the Admin Console: Security > API > Authorization Servers, column Audience"
    )
    line_hint = "" if line.key == "okta.issuer" else f" (or after the issuer on {line.key})"
    raise ConfigurationError(
        f"okta.audience: is required when okta.environment = production{line_hint}; "
        f"set it to the audience your authorization server puts in this API's "
        f"tokens ({where})"
    )


def parse_issuers(lines: list[str], defaults: IssuerDefaults) -> tuple[IssuerSettings, ...]:
    """Every line of ``okta.issuer``; an issuer may be listed once, and only one line
    may take opaque tokens."""
    # With one line, messages name the key alone, as they always have.
    keys = (
        ["okta.issuer"]
        if len(lines) == 1
        else [f"okta.issuer line {number}" for number in range(1, len(lines) + 1)]
    )
    issuers: list[IssuerSettings] = []
    for key, line in zip(keys, lines, strict=True):
        parsed = _issuer_line(line, key, defaults)
        for earlier in issuers:
            if earlier.issuer == parsed.issuer:
                raise ConfigurationError(f"{key}: {parsed.issuer} is listed twice")
        issuers.append(parsed)
    opaque = [key for key, parsed in zip(keys, issuers, strict=True) if parsed.opaque]
    if len(opaque) > 1:
        # An opaque token says nothing of its issuer: it may be sent to one only.
        raise ConfigurationError(
            f"{opaque[1]}: opaque=true is also set on {opaque[0]}; tokens that are not "
            f"JWTs can be introspected at one authorization server only"
        )
    return tuple(issuers)

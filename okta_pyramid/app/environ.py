"""Settings that name environment variables: ``${NAME}`` and ``${NAME:-default}``.

A deployment keeps what differs between environments (issuer, audience, listen
address, proxies) out of the repository, and the ini file stays the one place
that says which setting is read from which variable::

    okta.issuer = ${OKTA_ISSUER}
    okta.audience = ${OKTA_AUDIENCE:-api://default}

``${NAME}`` is required: an unset or empty variable stops start-up with a message
naming the setting and the variable. ``${NAME:-default}`` uses ``default`` when the
variable is unset or empty (as in a POSIX shell). ``$$`` is a literal ``$``.
Anything else the expansion does not understand is refused, so a typo is not taken
literally: a ``$`` that starts no reference, a default holding another reference
(``${A:-${B}}``), a ``}`` right after a reference (``${B:-x}}``).

A refusal names the setting and the position of what is wrong, never the value,
which may be a secret (a database URL with its password, say).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from pyramid.exceptions import ConfigurationError

log = logging.getLogger(__name__)

_REFERENCE = re.compile(
    r"\$(?:"
    r"(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}(?P<stray>\})?"
    r"|(?P<invalid>)"
    r")"
)


def expand_value(key: str, value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with its ``${NAME}`` references replaced from ``environ``."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        # 1-based, as an editor counts; the value itself is never quoted.
        at = match.start() + 1
        name = match.group("name")
        if name is None:
            raise ConfigurationError(
                f"{key}: the '$' at character {at} must start ${{NAME}} or "
                f"${{NAME:-default}} (or be written $$)"
            )
        default = match.group("default")
        if default is not None and ("$" in default or "{" in default):
            raise ConfigurationError(
                f"{key}: the default of ${{{name}:-...}} at character {at} holds a '$' or "
                f"'{{'; a default is plain text and cannot hold another reference"
            )
        if match.group("stray") is not None:
            raise ConfigurationError(
                f"{key}: the '}}' at character {match.end()} closes no reference; remove it"
            )
        found = env.get(name, "")
        if found:
            return found
        if default is None:
            raise ConfigurationError(
                f"{key}: is read from the environment variable {name}, which is not set"
            )
        return default

    return _REFERENCE.sub(replace, value)


def expand_settings(
    settings: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``settings`` with every ``${NAME}`` string value expanded."""
    expanded = {}
    for key, value in settings.items():
        if isinstance(value, str) and "$" in value:
            value = expand_value(key, value, environ)
        expanded[key] = value
    return expanded

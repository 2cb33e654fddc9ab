"""Parsing the ``okta.*`` settings: the table's keys, assembled into the issuers,
introspection and :class:`OktaSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .introspection import check_introspection_issuers, parse_introspection
from .issuer_lines import IssuerDefaults, parse_issuers
from .model import OktaSettings
from .table import SETTING_NAMES, SETTINGS, TABLE, public_url_from_proxy
from .values import PREFIX, Values, refuse_unknown_keys


def parse_settings(settings: Mapping[str, Any]) -> OktaSettings:
    """Validate the ``okta.*`` keys of a Pyramid settings mapping."""
    refuse_unknown_keys(settings, PREFIX, SETTING_NAMES)
    values = Values(settings, TABLE)
    lines = values["issuer"]
    introspection = parse_introspection(values)
    # Checked in this order: the environment, then what the lines take by default.
    defaults = IssuerDefaults(
        production=values["environment"] == "production",
        audiences=values["audience"],
        client_ids=values["client_ids"],
        required_claims=values["required_claims"],
        introspection=introspection is not None,
    )
    issuers = parse_issuers(lines, defaults)
    check_introspection_issuers(introspection, issuers)
    first = issuers[0]
    fields = {setting.name: values[setting.name] for setting in SETTINGS if setting.is_field}
    return OktaSettings(
        issuer=first.issuer,
        audiences=first.audiences,
        client_ids=first.client_ids,
        required_claims=first.required_claims,
        org_server=first.org_server,
        issuers=issuers,
        introspection=introspection,
        public_url_from_proxy=public_url_from_proxy(settings),
        **fields,
    )

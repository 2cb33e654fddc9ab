"""Step-up: views that need a stronger or more recent sign-in (RFC 9470).

A view says what it needs with view options named after the challenge's parameters::

    @view_config(route_name="transfer", permission=AUTHENTICATED,
                 acr_values=("urn:okta:loa:2fa:any", "phr", "phrh"), max_age=300)

A token whose ``acr`` is none of ``acr_values``, or whose ``auth_time`` is more than
``max_age`` seconds ago (``okta.leeway`` allowed, also for an ``auth_time`` ahead of
this clock), or that lacks the claim the view needs, is answered 401
``insufficient_user_authentication`` with the view's ``acr_values`` and ``max_age``
in the challenge of the scheme it used: the client signs the user in again with them
and retries (docs/step-up.md).

A token issued to a client alone (no user signed in, as the client-credentials grant
gives: ``sub`` is the client's own id, or there is no ``sub``) is answered 403: no
sign-in can step it up, so the challenge asks for none.

The claims are those the token was judged by: the JWT's own, or the introspection
answer's for a token judged by introspection. The check runs after the view's
permission and before ``require_active_token``'s call to the issuer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.request import Request
from pyramid.response import Response

from .active_token import LIVE_FAILURE, view_permission
from .active_token import OPTION as ACTIVE_TOKEN_OPTION
from .bearer import withhold_claims
from .errors import InsufficientUserAuthentication, UserSignInRequired, answer
from .parts import okta_parts
from .security import authentication

log = logging.getLogger(__name__)

#: The view options, named after RFC 9470 §3's challenge parameters.
ACR_VALUES = "acr_values"
MAX_AGE = "max_age"

# RFC 9470 §3: acr_values is a space-separated list of values (each as OpenID Connect
# Core's acr: a string; here printable ASCII without spaces, quotes or backslashes,
# so it can be quoted in a challenge unchanged).
_ACR_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


class StepUp:
    """What one view needs of the sign-in behind a token."""

    __slots__ = ("acr_values", "challenge_acr_values", "leeway", "max_age")

    def __init__(self, acr_values: tuple[str, ...], max_age: int | None, leeway: int) -> None:
        self.acr_values = frozenset(acr_values)
        #: As the view listed them, for the challenge (the client's preference order).
        self.challenge_acr_values = " ".join(acr_values) or None
        self.max_age = max_age
        self.leeway = leeway

    def failure(
        self, claims: Mapping[str, Any], now: float
    ) -> InsufficientUserAuthentication | UserSignInRequired | None:
        """Why ``claims`` do not meet this view's needs; ``None`` when they do."""
        if _client_alone(claims):
            return UserSignInRequired()
        why = self._acr_failure(claims) or self._age_failure(claims, now)
        if why is None:
            return None
        return InsufficientUserAuthentication(why, self.challenge_acr_values, self.max_age)

    def _acr_failure(self, claims: Mapping[str, Any]) -> str | None:
        if not self.acr_values:
            return None
        acr = claims.get("acr")
        if acr is None:
            return "the access token does not say how the user signed in (no acr claim)"
        if not isinstance(acr, str) or acr not in self.acr_values:
            return "the user's sign-in is not one this endpoint accepts (acr)"
        return None

    def _age_failure(self, claims: Mapping[str, Any], now: float) -> str | None:
        if self.max_age is None:
            return None
        auth_time = claims.get("auth_time")
        if auth_time is None:
            return "the access token does not say when the user signed in (no auth_time claim)"
        if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
            return "the access token's auth_time is not a number of seconds"
        if auth_time > now + self.leeway:
            return "the access token's auth_time is in the future"
        if now - auth_time > self.max_age + self.leeway:
            return f"the user signed in more than {self.max_age} seconds ago (max_age)"
        return None


def _client_alone(claims: Mapping[str, Any]) -> bool:
    # RFC 9068 §2.2: with no resource owner (client credentials), sub identifies the
    # client; Okta's tokens then have sub equal to cid, and no uid.
    sub = claims.get("sub")
    if sub is None:
        return True
    client = claims.get("cid", claims.get("client_id"))
    return client is not None and sub == client


def acr_values_option(value: Any, view: Any) -> tuple[str, ...]:
    """The view option ``acr_values``: a space-separated string, or strings."""
    values = tuple(value.split()) if isinstance(value, str) else value
    if (
        not isinstance(values, (tuple, list))
        or not values
        or not all(
            isinstance(acr, str) and acr and len(acr) <= 256 and set(acr) <= _ACR_CHARS
            for acr in values
        )
    ):
        raise ConfigurationError(
            f"{ACR_VALUES} on view {view!r}: must be one or more acr values, such as "
            f'("urn:okta:loa:2fa:any", "phr"): strings of printable ASCII without '
            f"spaces, quotes or backslashes; got {value!r:.80}"
        )
    return tuple(dict.fromkeys(values))


def max_age_option(value: Any, view: Any) -> int:
    """The view option ``max_age``: whole seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{MAX_AGE} on view {view!r}: must be a whole number of seconds, 0 or more "
            f"(such as 300); got {value!r:.40}"
        )
    return value


def step_up(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    """The view deriver of the ``acr_values`` and ``max_age`` view options."""
    if info.exception_only:
        return view
    acr_values = info.options.get(ACR_VALUES)
    max_age = info.options.get(MAX_AGE)
    if acr_values is None and max_age is None:
        return view
    shown = info.original_view
    needs = StepUp(
        acr_values_option(acr_values, shown) if acr_values is not None else (),
        max_age_option(max_age, shown) if max_age is not None else None,
        okta_parts(info.registry).settings.leeway,
    )
    if view_permission(info) is None:
        raise ConfigurationError(
            f"{ACR_VALUES}/{MAX_AGE} on view {shown!r}: the view is public; give it a "
            f"permission (or leave okta.protect_all on) so that it needs a token"
        )

    def stepped_up_view(context: Any, request: Request) -> Response:
        verdict = authentication(request)
        identity = verdict.identity
        # The permission check before this one let the request through, so it had a
        # valid token: only an application's own policy could leave none here.
        failure = (
            needs.failure(identity.claims, time.time())
            if identity is not None
            else UserSignInRequired()
        )
        if failure is None:
            return view(context, request)
        log.info("token refused: reason=%s client=%s", failure.reason, request.remote_addr)
        request.__dict__[LIVE_FAILURE] = failure
        withhold_claims(request)
        return answer(request, failure, verdict.scheme)

    return stepped_up_view


step_up.options = (ACR_VALUES, MAX_AGE)  # type: ignore[attr-defined]


def includeme(config: Configurator) -> None:
    """Add the ``acr_values`` and ``max_age`` view options: after the permission check
    (Pyramid's ``secured_view``), before ``require_active_token`` asks the issuer."""
    config.add_view_deriver(step_up, over=("rendered_view", ACTIVE_TOKEN_OPTION))

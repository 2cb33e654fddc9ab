"""What the development issuer remembers of users signing in: sessions, sign-ins in
progress, authorization codes and refresh tokens. In this process's memory, like the
DPoP nonces and the revocation list: a restart signs everyone out.

- A *transaction* is one authorization request waiting for the user at the login
  page (RFC 6749 §4.1.1): its parameters, the CSRF token of its form and the
  browser it was shown to.
- A *session* is a signed-in browser (the issuer's own cookie): the user, when and
  how they authenticated (OIDC Core §2: ``auth_time``, ``acr``, ``amr``).
- An *authorization code* is single use, lives 60 seconds and is bound to its
  client, redirect URI and PKCE challenge (RFC 6749 §4.1.2, §10.5; RFC 7636 §4.4).
- A *refresh token* belongs to a *family* started by one code. Each use rotates it;
  a rotated token used again revokes the whole family (OAuth 2.0 Security BCP
  §4.14.2, as Okta does for browser apps), and so does a code used twice (RFC 6749
  §4.1.2).

Every store is capped, so a runaway script cannot exhaust memory: the oldest entry
goes first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

#: Okta's acr values (its "Step-up authentication using ACR values" guide): the
#: first two ask for one factor, the others for two (``phr``/``phrh``: phishing
#: resistant, OpenID EAP ACR Values 1.0). This issuer's second factor is a one-time
#: code, so a two-factor sign-in reaches ``urn:okta:loa:2fa:any``.
ACR_1FA_ANY = "urn:okta:loa:1fa:any"
ACR_1FA_PWD = "urn:okta:loa:1fa:pwd"  # noqa: S105 - an acr value, not a password
ACR_2FA_ANY = "urn:okta:loa:2fa:any"
ACR_2FA_IFPOSSIBLE = "urn:okta:loa:2fa:any:ifpossible"
ACR_PHR = "phr"
ACR_PHRH = "phrh"
ACR_VALUES = (ACR_1FA_ANY, ACR_1FA_PWD, ACR_2FA_ANY, ACR_2FA_IFPOSSIBLE, ACR_PHR, ACR_PHRH)
#: The values that need a second factor.
TWO_FACTOR_ACR_VALUES = frozenset({ACR_2FA_ANY, ACR_2FA_IFPOSSIBLE, ACR_PHR, ACR_PHRH})
#: What each sign-in reaches (RFC 8176 method names).
ONE_FACTOR = (ACR_1FA_PWD, ("pwd",))
TWO_FACTORS = (ACR_2FA_ANY, ("pwd", "otp"))

#: RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is
#: RECOMMENDED"; Okta's codes live 60 seconds, and so do these.
CODE_LIFETIME = 60
#: How long the login page waits for the user.
TRANSACTION_LIFETIME = 600
#: How long a sign-in lasts in the browser (Okta's default session: 2 hours).
SESSION_LIFETIME = 7200
#: How long a refresh token may wait to be used.
REFRESH_TOKEN_LIFETIME = 86400
#: The most entries each store holds.
MAX_ENTRIES = 1000
#: How many recent users the login page offers.
RECENT_USERS = 5

T = TypeVar("T")


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SignIn:
    """Who signed in, when and how."""

    username: str
    groups: tuple[str, ...]
    auth_time: int
    acr: str
    amr: tuple[str, ...]

    @property
    def two_factors(self) -> bool:
        return self.acr == TWO_FACTORS[0]


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request whose client and redirect URI are valid (RFC 6749
    §4.1.1, OIDC Core §3.1.2.1)."""

    client_id: str
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    scopes: tuple[str, ...]
    code_challenge: str
    two_factors: bool
    max_age: int | None
    prompt: frozenset[str]
    login_hint: str | None


@dataclass
class Transaction:
    """A request at the login page: its form's CSRF token, the browser it was shown
    to, and after the first step, the user waiting for the one-time code."""

    request: AuthorizationRequest
    csrf: str
    browser: str
    expires: float
    user: SignIn | None = None
    #: The one-time code of the second step (shown on the page: no real factor here).
    otp: str | None = None
    #: The scopes the user granted at the first step.
    granted: tuple[str, ...] = ()


@dataclass
class Grant:
    """What an authorization code or a refresh token grants."""

    client_id: str
    user: SignIn
    scopes: tuple[str, ...]
    family: str
    expires: float
    #: Authorization codes only: the redirect URI, PKCE challenge and nonce.
    redirect_uri: str = ""
    code_challenge: str = ""
    nonce: str | None = None
    used: bool = False


@dataclass
class Family:
    """The tokens issued from one authorization code, revoked together."""

    #: The DPoP key's thumbprint the family's tokens are bound to (RFC 9449 §5).
    jkt: str | None = None
    revoked: bool = False
    #: The access tokens' jti and exp, revoked with the family.
    access_tokens: list[tuple[str, int]] = field(default_factory=list)


class _Store(Generic[T]):
    """A capped, expiring map; the oldest entry goes first when full."""

    def __init__(self, clock: Callable[[], float], expiry: Callable[[T], float]) -> None:
        self._entries: OrderedDict[str, T] = OrderedDict()
        self._clock = clock
        self._expiry = expiry

    def put(self, key: str, value: T) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        now = self._clock()
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) <= MAX_ENTRIES and self._expiry(oldest) > now:
                break
            del self._entries[oldest_key]

    def get(self, key: str) -> T | None:
        value = self._entries.get(key)
        if value is None or self._expiry(value) <= self._clock():
            return None
        return value

    def pop(self, key: str) -> T | None:
        value = self._entries.pop(key, None)
        if value is None or self._expiry(value) <= self._clock():
            return None
        return value

    def __len__(self) -> int:
        return len(self._entries)


class SignIns:
    """The sign-in state of one authorization server (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.transactions: _Store[Transaction] = _Store(clock, lambda t: t.expires)
        self.sessions: _Store[tuple[SignIn, float]] = _Store(clock, lambda s: s[1])
        self.codes: _Store[Grant] = _Store(clock, lambda g: g.expires + CODE_LIFETIME)
        self.refresh_tokens: _Store[Grant] = _Store(clock, lambda g: g.expires)
        self.families: _Store[Family] = _Store(clock, lambda f: float("inf"))
        self._recent: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    # -- the login page ------------------------------------------------------

    def begin(self, request: AuthorizationRequest, browser: str) -> tuple[str, Transaction]:
        """A new transaction for ``request`` shown to ``browser``; its id."""
        tx_id = secrets.token_urlsafe(16)
        tx = Transaction(
            request, secrets.token_urlsafe(24), browser, self.clock() + TRANSACTION_LIFETIME
        )
        with self.lock:
            self.transactions.put(tx_id, tx)
        return tx_id, tx

    def transaction(self, tx_id: str, csrf: str, browser: str) -> Transaction | None:
        """The transaction whose form carried ``csrf`` in the browser it was shown
        to, or ``None`` (unknown, expired, a forged form or another browser)."""
        with self.lock:
            tx = self.transactions.get(tx_id)
        if tx is None:
            return None
        same_form = hmac.compare_digest(tx.csrf.encode(), csrf.encode("utf-8", "replace"))
        same_browser = hmac.compare_digest(tx.browser.encode(), browser.encode("utf-8", "replace"))
        return tx if same_form and same_browser else None

    def finish(self, tx_id: str) -> None:
        with self.lock:
            self.transactions.pop(tx_id)

    def recent_users(self) -> list[tuple[str, tuple[str, ...]]]:
        """The last users who signed in, newest first, with their groups."""
        with self.lock:
            return list(reversed(self._recent.items()))

    # -- sessions ------------------------------------------------------------

    def start_session(self, user: SignIn) -> str:
        session_id = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions.put(session_id, (user, self.clock() + SESSION_LIFETIME))
            self._recent.pop(user.username, None)
            self._recent[user.username] = user.groups
            while len(self._recent) > RECENT_USERS:
                self._recent.popitem(last=False)
        return session_id

    def session(self, session_id: str | None) -> SignIn | None:
        if not session_id:
            return None
        with self.lock:
            entry = self.sessions.get(session_id)
        return entry[0] if entry is not None else None

    def end_session(self, session_id: str | None) -> None:
        if session_id:
            with self.lock:
                self.sessions.pop(session_id)

    # -- codes and refresh tokens ---------------------------------------------

    def issue_code(
        self, request: AuthorizationRequest, user: SignIn, scopes: tuple[str, ...]
    ) -> str:
        code = secrets.token_urlsafe(32)
        family = secrets.token_urlsafe(16)
        grant = Grant(
            client_id=request.client_id,
            user=user,
            scopes=scopes,
            family=family,
            expires=self.clock() + CODE_LIFETIME,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
        )
        with self.lock:
            self.codes.put(code, grant)
            self.families.put(family, Family())
        return code

    def redeem_code(self, code: str, client_id: str) -> tuple[Grant | None, Family | None]:
        """The grant of ``code`` if it is live, unused and ``client_id``'s, marking it
        used. A code used a second time gives ``(None, family)``: the caller revokes
        what it issued. Another client's code is left as it was."""
        with self.lock:
            grant = self.codes.get(code)
            if grant is None or grant.client_id != client_id:
                return None, None
            family = self.families.get(grant.family)
            if grant.used or grant.expires <= self.clock():
                return None, family if grant.used else None
            grant.used = True
            return grant, family

    def issue_refresh_token(self, grant: Grant) -> str:
        token = secrets.token_urlsafe(32)
        fresh = replace(
            grant,
            expires=self.clock() + REFRESH_TOKEN_LIFETIME,
            used=False,
            redirect_uri="",
            code_challenge="",
            nonce=None,
        )
        with self.lock:
            self.refresh_tokens.put(token, fresh)
        return token

    def rotate_refresh_token(
        self, token: str, client_id: str, jkt: str | None
    ) -> tuple[Grant | None, Family | None, bool]:
        """``(grant, family, reused)``: the grant of a live refresh token of
        ``client_id``, now used; for a rotated token used again, ``reused`` is true and
        the family is revoked. Another client's token, or one bound to a DPoP key
        other than ``jkt``'s, is left as it was and gives ``(None, None, False)``."""
        with self.lock:
            grant = self.refresh_tokens.get(token)
            if grant is None or grant.client_id != client_id:
                return None, None, False
            family = self.families.get(grant.family)
            if family is None or family.revoked:
                return None, family, False
            if family.jkt is not None and family.jkt != jkt:
                return None, None, False
            if grant.used:
                family.revoked = True
                return None, family, True
            grant.used = True
            return grant, family, False

    def refresh_grant(self, token: str) -> tuple[Grant, Family] | None:
        """The grant and family of a live refresh token, left as they are (for
        revocation), or ``None``."""
        with self.lock:
            grant = self.refresh_tokens.get(token)
            family = self.families.get(grant.family) if grant is not None else None
        if grant is None or family is None:
            return None
        return grant, family

    def revoke_family(self, family: Family) -> None:
        with self.lock:
            family.revoked = True

    def family(self, family_id: str) -> Family | None:
        with self.lock:
            return self.families.get(family_id)

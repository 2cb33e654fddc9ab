"""Token introspection (RFC 7662): ask the issuer whether a token is still active.

A JWT checked locally stays valid until it expires, even once revoked. Where that
matters, the token is also introspected; a token that is not a JWT (an opaque
token), or one from an issuer whose tokens cannot be validated locally (Okta's org
authorization server), is judged by introspection alone. This module knows
nothing of Pyramid::

    introspector = TokenIntrospector(
        IssuerClient(issuer), ClientSecretBasic("0oa...", secret), rules=verifier)
    verified = introspector.introspect(token)        # an opaque token
    introspector.confirm(token, verifier.verify_token(token))   # a JWT, still active?

Both raise :class:`InactiveToken` (HTTP 401) for a token the issuer calls inactive,
another :class:`~.exceptions.InvalidToken` for an active answer this API does not
accept (wrong ``aud``, say), and :class:`IntrospectionUnavailable` (HTTP 503) when
no trustworthy answer came: failure is closed.

The rules, and why:

- the endpoint comes from the issuer's metadata (``introspection_endpoint``), https
  only (http on loopback, as elsewhere); the exchange has the limits of a key fetch
  (one deadline over all of it, a size cap, no redirects);
- requests carry ``token_type_hint=access_token`` and authenticate the API as a
  client (:class:`ClientSecretBasic`, :class:`ClientSecretPost`,
  :class:`PrivateKeyJWT`; RFC 6749 §2.3.1, RFC 7523 §2.2);
- ``active`` must be JSON ``true``; an answer that is not a JSON object with a
  boolean ``active`` is garbage (503, never 401, never 200);
- ``exp``, ``nbf``, ``iat``, ``iss`` and ``aud`` in an active answer are checked
  like a JWT's, and so are ``okta.client_ids`` and, for a token judged by
  introspection alone, ``okta.required_claims`` and the presence of ``aud`` (a JWT
  met them with its own claims);
  a ``token_type`` other than ``Bearer`` or ``DPoP``, a ``token_use`` other than
  ``access_token`` or ``access`` (Ory Hydra, Amazon Cognito) and a ``typ`` naming a
  refresh or ID token (Keycloak) are refused: an active refresh token must not open the API;
  ``cnf.jkt`` and ``token_type: DPoP`` make the token DPoP-bound (RFC 9449 §6.2);
  confirming a JWT, an answer whose ``jti`` or ``sub`` is not the token's describes
  another token and is no answer (503);
- answers are cached per token digest for ``cache_ttl`` seconds and never past the
  token's ``exp``; an inactive answer is final (a revoked or expired token never
  becomes active again) and kept until the token expires, but "not valid yet"
  (``nbf``, ``iat``) is not, and is kept for ``cache_ttl`` only; concurrent requests
  for one token make one call;
- with a ``shared`` answer store (:mod:`.shared`), the answer is also kept there,
  under the same expiry, for the other processes: one call serves them all. A
  process that finds it there judges it again under its own rules, and keeps it
  in its own cache no longer than the shared entry lives; only processes with the
  same issuer, client and ``cache_ttl`` share answers. A store that does not
  answer makes the request 503 (:class:`~.shared.SharedStoreUnavailable`);
- the calls in flight are bounded by :class:`~.capacity.CallSlots` (sized to the
  server's threads, shared by every issuer): a JWT whose signature verified, or a
  token the issuer called active before, may take any slot; a token nobody has
  vouched for yet (an opaque token, an org server's token seen for the first
  time) at most a share of them, so made-up tokens cannot crowd out real ones;
- a request that finds no free slot, or a call for its token under way, waits as
  long as the endpoint keeps answering (:class:`~.capacity.Progress`); an endpoint
  that has stopped answering is *stalled*, and its requests are answered 503 at
  once instead of waiting. After a *failed* call (never a busy one), calls pause
  for ``failure_backoff`` seconds. So an issuer that stalls holds at most the
  call slots' threads for one timeout, never all of the server's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeGuard

from . import _jws
from .cache import VerifiedTokenCache, token_digest
from .capacity import DEFAULT_SERVER_THREADS, CallSlots, Progress, calls_for_threads
from .client_auth import ClientAuthentication
from .discovery import IssuerClient
from .exceptions import (
    ImmatureToken,
    InvalidIssuer,
    InvalidToken,
    IssuerUnavailable,
    MalformedToken,
)
from .fetch import FetchError
from .shared import SharedStoreUnavailable
from .verifier import MAX_TOKEN_LENGTH, AccessTokenVerifier, VerifiedToken

log = logging.getLogger(__name__)

#: Seconds an answer is reused (``okta.introspection_cache_ttl``).
DEFAULT_CACHE_TTL = 30
#: Answers kept in memory, and the bytes they may hold.
DEFAULT_CACHE_SIZE = 4096
DEFAULT_CACHE_BYTES = 16 * 1024 * 1024
#: An inactive answer for a token whose expiry is unknown (an opaque token) is kept
#: this long: an hour is Okta's default access-token lifetime.
INACTIVE_TTL = 3600
#: After a failed call, no call is made for this long (seconds).
DEFAULT_FAILURE_BACKOFF = 2.0
#: A call the endpoint refused (4xx) is logged as a warning at most this often.
REFUSAL_LOG_INTERVAL = 60.0
#: Tokens the issuer called active that are remembered as such (their digests), so
#: that their next call takes a trusted slot (:class:`~.capacity.CallSlots`).
DEFAULT_KNOWN_ACTIVE = 16384
#: ``token_type`` values of an access token (RFC 6750, RFC 9449 §6.2), lower case.
ACCESS_TOKEN_TYPES = frozenset({"bearer", "dpop"})
# A waiter gives the call it waits for this long past the call's deadline.
_HANDOVER = 0.1
# RFC 6750 §2.1: what an access token in a header may be made of. Nothing else is
# sent to the issuer.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class InactiveToken(InvalidToken):
    """The issuer says the token is not active: revoked, expired, or never its own."""

    reason = "inactive"


class IntrospectionUnavailable(IssuerUnavailable):
    """No trustworthy introspection answer could be had; the token may be fine."""

    reason = "introspection_unavailable"


class AnswerStore(Protocol):
    """Introspection answers shared between processes (:class:`.shared.RedisAnswerStore`)."""

    def get(self, scope: bytes, digest: bytes) -> tuple[dict[str, Any], float] | None:
        """The answer document for a token and the time until which it may be used."""

    def put(self, scope: bytes, digest: bytes, document: dict[str, Any], until: float) -> None:
        """Keep ``document`` until ``until`` (a :func:`time.time` value)."""


class _Flight:
    """One introspection call under way, which requests for the same token share."""

    __slots__ = ("deadline", "done", "error", "result")

    def __init__(self, deadline: float) -> None:
        self.done = threading.Event()
        self.deadline = deadline
        self.result: Any = None
        self.error: BaseException | None = None


class _Refusal:
    """A final answer that refuses the token (inactive, or active but not for us)."""

    __slots__ = ("cls", "description")
    size = 128

    def __init__(self, error: InvalidToken) -> None:
        self.cls = type(error)
        self.description = error.description

    def raise_(self) -> NoReturn:
        raise self.cls(self.description)


class TokenIntrospector:
    """Introspects tokens at one issuer for one API, with a cache.

    The endpoint is the issuer's metadata's ``introspection_endpoint``, or
    ``endpoint`` when given (a server whose metadata names none, such as Ory Hydra,
    whose endpoint is on its admin port). ``slots`` bounds the calls in flight; give
    every introspector of a process the same one, sized to the server's threads
    (by default each has its own, sized for waitress's default of four).
    """

    def __init__(
        self,
        client: IssuerClient,
        authentication: ClientAuthentication,
        *,
        rules: AccessTokenVerifier,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        slots: CallSlots | None = None,
        failure_backoff: float = DEFAULT_FAILURE_BACKOFF,
        clock: Callable[[], float] = time.time,
        shared: AnswerStore | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.client = client
        self.authentication = authentication
        self.endpoint = endpoint
        #: The claim rules of the API (issuer, audiences, leeway, clients, required claims).
        self.rules = rules
        self.cache_ttl = cache_ttl
        #: ``None`` when ``cache_ttl`` is 0: every request that needs an answer asks.
        self.cache = (
            VerifiedTokenCache(cache_size, max_bytes=cache_bytes) if cache_ttl > 0 else None
        )
        #: The call slots (shared by the introspectors of a process).
        self.slots = (
            slots
            if slots is not None
            else CallSlots(calls_for_threads(DEFAULT_SERVER_THREADS), timeout=client.http_timeout)
        )
        #: Whether this endpoint answers (its calls' outcomes and durations).
        self.progress = Progress(client.http_timeout)
        self.failure_backoff = failure_backoff
        self.clock = clock
        #: Answers shared with other processes; ``None``: this process's cache only
        #: (also without a cache: every request asks, so nothing is read or kept).
        self.shared = shared if self.cache is not None else None
        # Answers are shared per issuer and client (who asks may change the answer)
        # and cache TTL: an entry does not say how old it is, so a process that
        # reuses answers for less time must not read those kept for longer.
        self._scope = hashlib.sha256(
            f"{client.issuer}\n{authentication.client_id}\n{float(cache_ttl)!r}".encode()
        ).digest()[:8]
        #: Introspection calls made (each one an HTTP exchange with the issuer).
        self.calls = 0
        #: Answers found in the shared store (another process's call, or this one's).
        self.shared_hits = 0
        #: Called with the seconds each call took and its outcome (``active``,
        #: ``inactive`` or ``failed``): the metrics' hook.
        self.call_observer: Callable[[float, str], None] | None = None
        self._lock = threading.Lock()
        self._flights: dict[bytes, _Flight] = {}
        #: Digests of tokens the issuer called active, and until when (``time.time()``):
        #: their calls are trusted (see :class:`~.capacity.CallSlots`).
        self._known_active: dict[bytes, float] = {}
        #: ``time.monotonic()`` before which no call is made (after a failure).
        self._paused_until = 0.0
        self._failures = 0
        self._refusal_quiet_until = 0.0

    # -- the two questions --------------------------------------------------------

    def introspect(self, token: str) -> VerifiedToken:
        """Judge ``token`` by introspection alone: the token as the issuer describes
        it, or raise a :class:`~.exceptions.VerificationError`."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise MalformedToken(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
        if not _B64TOKEN.fullmatch(token):
            raise MalformedToken(
                "the token has characters an access token cannot have (RFC 6750 b64token)"
            )
        return self._answer(token, token_digest(token), None)

    def confirm(self, token: str, verified: VerifiedToken) -> VerifiedToken:
        """Check that ``token``, which passed the local checks as ``verified``, is
        still active; return ``verified`` or raise."""
        digest = verified.digest or token_digest(token)
        answer = self._answer(token, digest, verified)
        # The answer may name the key the token is bound to (RFC 9449 §6.2): it
        # must be the one the signed token names.
        if answer.jkt is not None and answer.jkt != verified.jkt:
            raise InvalidToken(
                "the issuer binds the access token to another key than the token's cnf.jkt"
            )
        return verified

    # -- cache and single flight ----------------------------------------------------

    def _answer(self, token: str, digest: bytes, verified: VerifiedToken | None) -> VerifiedToken:
        cache = self.cache
        if cache is not None:
            cached = cache.get(digest, self.clock(), 0)
            if cached is not None:
                return _outcome(cached)
        if self.shared is not None:
            found = self.shared.get(self._scope, digest)
            if found is not None:
                document, until = found
                self.shared_hits += 1
                expires = None if verified is None else verified.not_after
                outcome = self._judge(document, digest, signed=verified is not None)
                self._keep(digest, outcome, min(until, self._until(outcome, expires)))
                return _outcome(outcome)
        with self._lock:
            flight = self._flights.get(digest)
            if flight is None and cache is not None:
                # A call that ended since the lookup above cached its answer before
                # it left the table: look again rather than make a second call.
                cached = cache.get(digest, self.clock(), 0)
                if cached is not None:
                    return _outcome(cached)
            if flight is None:
                # The leader may wait for a slot and then call: two timeouts at most.
                flight = self._flights[digest] = _Flight(
                    time.monotonic() + 2 * self.client.http_timeout
                )
                leader = True
            else:
                leader = False
        if not leader:
            return self._follow(flight)
        try:
            flight.result = self._call(token, digest, verified)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[digest]
            flight.done.set()
        return _outcome(flight.result)

    def _follow(self, flight: _Flight) -> VerifiedToken:
        """Wait for the call under way for the same token, as long as the endpoint
        keeps answering (a stalled one is not waited for) and not past the call's end."""
        while not flight.done.is_set():
            now = time.monotonic()
            stalled_at = self.progress.stalled_at()
            until = min(flight.deadline + _HANDOVER, stalled_at)
            if now >= until:
                raise self._stalled() if now >= stalled_at else self._busy()
            flight.done.wait(until - now)
        if flight.error is not None:
            if isinstance(flight.error, IntrospectionUnavailable):
                raise IntrospectionUnavailable(flight.error.description, flight.error.retry_after)
            raise self._busy()
        return _outcome(flight.result)

    def _busy(self) -> IntrospectionUnavailable:
        return IntrospectionUnavailable(
            "the authorization server is being asked about other tokens; try again shortly",
            retry_after=1,
        )

    def _stalled(self) -> IntrospectionUnavailable:
        # Not a failure of its own: the calls outstanding fail at their deadline,
        # and that pauses the calls.
        return IntrospectionUnavailable(
            "the authorization server could not confirm the token: it has stopped "
            "answering; try again shortly",
            retry_after=max(1, int(self.progress.patience)),
        )

    # -- one call -------------------------------------------------------------------

    def _call(
        self, token: str, digest: bytes, verified: VerifiedToken | None
    ) -> VerifiedToken | _Refusal:
        """Ask the issuer (the cache missed and no call for this token is under way)
        and cache what it says; ``verified``: the JWT being confirmed, if it is one."""
        if time.monotonic() < self._paused_until:
            raise self._unavailable("it failed moments ago")
        if self.progress.stalled():
            raise self._stalled()
        trusted = verified is not None or self._is_known_active(digest)
        if not self.slots.acquire(
            trusted, time.monotonic() + self.client.http_timeout, self.progress
        ):
            raise self._stalled() if self.progress.stalled() else self._busy()
        try:
            if time.monotonic() < self._paused_until:
                raise self._unavailable("it failed moments ago")
            document = self._exchange(token)
        finally:
            self.slots.release(trusted)
        expires = None if verified is None else verified.not_after
        if verified is not None and document["active"] is True:
            self._same_token(document, verified)
        outcome = self._judge(document, digest, signed=verified is not None)
        if verified is None and isinstance(outcome, VerifiedToken):
            self._remember_active(digest, outcome.not_after)
        self._remember(digest, outcome, expires, document)
        return outcome

    def _is_known_active(self, digest: bytes) -> bool:
        until = self._known_active.get(digest)
        return until is not None and until > self.clock()

    def _remember_active(self, digest: bytes, until: float) -> None:
        known = self._known_active
        with self._lock:
            if len(known) >= DEFAULT_KNOWN_ACTIVE:
                now = self.clock()
                for name in [name for name, when in known.items() if when <= now]:
                    del known[name]
                if len(known) >= DEFAULT_KNOWN_ACTIVE:
                    # Still full: forget the oldest half (a dict keeps insertion order).
                    for name in list(known)[: DEFAULT_KNOWN_ACTIVE // 2]:
                        del known[name]
            known[digest] = min(until, self.clock() + INACTIVE_TTL)

    def _exchange(self, token: str) -> Any:
        """One call to the endpoint (discovering it first if need be); its JSON answer."""
        deadline = time.monotonic() + self.client.http_timeout
        elapsed: float | None = None
        answered = False
        progresses = (self.progress, self.slots.progress)
        for progress in progresses:
            progress.started()
        began = time.perf_counter()
        try:
            endpoint = (
                self.endpoint or self.client.metadata(deadline=deadline).introspection_endpoint
            )
            if endpoint is None:
                raise FetchError(
                    "the issuer's metadata names no usable (https) introspection_endpoint"
                )
            form = {"token": token, "token_type_hint": "access_token"}
            headers: dict[str, str] = {}
            self.authentication.apply(endpoint, form, headers)
            self.calls += 1
            started = time.perf_counter()
            try:
                document = self.client.post_form(endpoint, form, headers=headers, deadline=deadline)
                answered = True
            finally:
                elapsed = time.perf_counter() - started
        except FetchError as exc:
            # An HTTP answer, even a refusal, shows the endpoint is answering.
            answered = exc.status is not None
            if elapsed is not None:  # the call itself failed, not the discovery
                self._observe(elapsed, "failed")
            status = exc.status
            hint = ""
            if status in (400, 401, 403):
                hint = (
                    f" (check the introspection client id and its credentials for "
                    f"{self.authentication.method})"
                )
            # A refusal (4xx) answers this call only: some servers refuse a token
            # they cannot parse instead of calling it inactive, and pausing on that
            # would let anyone with junk tokens hold every other token at 503. An
            # endpoint that is down, slow or asks for less (429) pauses the calls.
            if status is not None and 400 <= status < 500 and status != 429:
                self._refused(f"{exc}{hint}")
                raise self._unavailable("it refused the call") from None
            self._failed(f"{exc}{hint}")
            raise self._unavailable("it could not be reached") from None
        finally:
            took = time.perf_counter() - began
            for progress in progresses:
                progress.finished(took if answered else None)
        if not isinstance(document, dict) or not isinstance(document.get("active"), bool):
            # RFC 7662 §2.2: a JSON object whose "active" is a boolean.
            self._observe(elapsed or 0.0, "failed")
            self._failed("its answer is not a JSON object with a boolean 'active'")
            raise self._unavailable("its answer made no sense")
        self._observe(elapsed or 0.0, "active" if document["active"] is True else "inactive")
        self._recovered()
        return document

    def _observe(self, seconds: float, outcome: str) -> None:
        observer = self.call_observer
        if observer is not None:
            observer(seconds, outcome)

    def _same_token(self, document: dict[str, Any], verified: VerifiedToken) -> None:
        """Refuse an answer that describes another token than the JWT it confirms: a
        ``jti`` or ``sub`` that both carry and that differ. It is no answer about this
        token (a confused endpoint, or a cache before it), so it is not kept."""
        claims = verified.claims()
        for name in ("jti", "sub"):
            if name in document and name in claims and document[name] != claims[name]:
                self._failed(f"its answer describes another token (its {name} is not the token's)")
                raise self._unavailable("its answer was about another token")

    def _judge(
        self, document: dict[str, Any], digest: bytes, *, signed: bool
    ) -> VerifiedToken | _Refusal:
        """The answer's verdict; ``signed`` when the token is a JWT that passed the
        local checks (:meth:`confirm`)."""
        if document["active"] is not True:
            return _Refusal(
                InactiveToken(
                    "the access token is not active (revoked, expired, or unknown to the "
                    "authorization server)"
                )
            )
        claims = {name: value for name, value in document.items() if name != "active"}
        try:
            # A JWT met okta.required_claims with its own signed claims, and had its
            # own aud checked; the answer may name them otherwise (Okta answers scp
            # as scope, cid as client_id). A token judged by the answer alone needs an
            # aud for this API, as a JWT does (RFC 9068 §4): a server may leave it out
            # for a token meant for no API in particular (Ory Hydra does).
            self.rules.validate_claims(
                claims,
                required=() if signed else ("aud",),
                required_claims=() if signed else None,
                client_required=not signed,
            )
            self._validate_type(claims)
        except InvalidToken as exc:
            return _Refusal(exc)
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        leeway = self.rules.leeway
        exp, iat, nbf = (claims.get(name) for name in ("exp", "iat", "nbf"))
        starts = max((value for value in (iat, nbf) if _is_number(value)), default=-math.inf)
        return VerifiedToken(
            payload,
            claims,
            not_before=starts - leeway,
            not_after=exp + leeway if _is_number(exp) else math.inf,
            digest=digest,
            issuer=self.client.issuer,
        )

    def _validate_type(self, claims: Mapping[str, Any]) -> None:
        token_type = claims.get("token_type")
        if token_type is not None and (
            not isinstance(token_type, str) or token_type.lower() not in ACCESS_TOKEN_TYPES
        ):
            # A refresh token is active too, and must not open the API.
            raise InvalidToken("the token is not an access token (token_type)")
        # Keycloak's typ and Hydra's token_use were checked with the claims.
        cnf = claims.get("cnf")
        if cnf is not None and not isinstance(cnf, dict):
            raise InvalidToken("the introspection answer's cnf is not an object")
        if (
            isinstance(token_type, str)
            and token_type.lower() == "dpop"
            and not (isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str))
        ):
            raise InvalidToken("the issuer calls the token DPoP-bound but names no key (cnf.jkt)")

    def _until(self, outcome: VerifiedToken | _Refusal, expires: float | None) -> float:
        """Until when ``outcome`` may be reused (a ``time.time()`` value)."""
        now = self.clock()
        if self.cache_ttl <= 0:
            return now
        if isinstance(outcome, _Refusal) and not issubclass(outcome.cls, ImmatureToken):
            # Final: kept while the token could otherwise be accepted.
            return expires if expires is not None else now + INACTIVE_TTL
        # An active answer; or "not valid yet" (nbf, iat), which time will change.
        until = now + self.cache_ttl
        if isinstance(outcome, VerifiedToken):
            until = min(until, outcome.not_after - self.rules.leeway)
        return until if expires is None else min(until, expires)

    def _remember(
        self,
        digest: bytes,
        outcome: VerifiedToken | _Refusal,
        expires: float | None,
        document: dict[str, Any],
    ) -> None:
        until = self._until(outcome, expires)
        self._keep(digest, outcome, until)
        if self.shared is None:
            return
        now = self.clock()
        if document["active"] is True:
            # Another process may judge an active answer by other rules (another
            # audience, other required claims) and accept what this one refused:
            # for it the answer is live, reused no longer than an active one.
            until = min(until, now + self.cache_ttl)
        if until > now:
            # The answer stands if the store fails (it logged its failure); others
            # ask again.
            with contextlib.suppress(SharedStoreUnavailable):
                self.shared.put(self._scope, digest, document, until)

    def _keep(self, digest: bytes, outcome: VerifiedToken | _Refusal, until: float) -> None:
        cache = self.cache
        now = self.clock()
        if cache is None or until <= now:
            return
        size = _Refusal.size if isinstance(outcome, _Refusal) else outcome.size
        cache.put(
            digest, outcome, size=size, not_before=-math.inf, not_after=until, generation=0, now=now
        )

    # -- incidents --------------------------------------------------------------------

    def _unavailable(self, why: str) -> IntrospectionUnavailable:
        wait = self._paused_until - time.monotonic()
        return IntrospectionUnavailable(
            f"the authorization server could not confirm the token: {why}; try again shortly",
            retry_after=int(wait) + 1 if wait > 0 else 1,
        )

    def _failed(self, why: str) -> None:
        with self._lock:
            self._failures += 1
            first = self._failures == 1
            self._paused_until = time.monotonic() + self.failure_backoff
        # One warning per incident; the token is never part of the message.
        if first:
            log.warning(
                "token introspection failed: %s; tokens that need it are "
                "answered 503 until it works again",
                why,
            )
        else:
            log.debug("token introspection failed again: %s", why)

    def _refused(self, why: str) -> None:
        # Not an incident (calls go on), but the API's credentials may be wrong:
        # said at most once a minute, however often a client sends such tokens.
        now = time.monotonic()
        with self._lock:
            loud = now >= self._refusal_quiet_until
            if loud:
                self._refusal_quiet_until = now + REFUSAL_LOG_INTERVAL
        if loud:
            log.warning("token introspection refused: %s; the token is answered 503", why)
        else:
            log.debug("token introspection refused: %s", why)

    def _recovered(self) -> None:
        if self._failures:
            with self._lock:
                failures, self._failures = self._failures, 0
            if failures:
                log.warning("token introspection works again (after %d failed call(s))", failures)


class IntrospectingVerifier:
    """Judges access tokens as the API is configured: JWTs locally (``verifier``),
    and with ``local=False`` (an issuer whose tokens cannot be validated locally)
    every token by introspection; tokens that are not JWTs by introspection alone
    with ``opaque`` (and otherwise not at all: Okta's custom authorization servers
    issue JWTs, so anything else is refused without a call).

    It stands where an :class:`~.verifier.AccessTokenVerifier` would (a
    :class:`~.schemes.RequestVerifier`'s ``tokens``); :meth:`confirm` adds the
    introspection of a locally checked JWT where a live token is needed.
    """

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        introspector: TokenIntrospector,
        *,
        local: bool = True,
        opaque: bool = False,
    ) -> None:
        self.verifier = verifier
        self.introspector = introspector
        self.local = local
        #: Whether tokens that are not JWTs are introspected (otherwise refused).
        self.opaque = opaque
        self.leeway = verifier.leeway

    def judged_locally(self, token: str) -> bool:
        """Whether ``token`` is checked locally: a compact JWS (three segments), at an
        issuer whose tokens can be."""
        return self.local and token.count(".") == 2

    def verify_token(self, token: str) -> VerifiedToken:
        """The token, checked locally or introspected; or a VerificationError."""
        if self.judged_locally(token):
            return self.verifier.verify_token(token)
        if not self.opaque or token.count(".") == 2:
            # A JWT this issuer alone can judge (Okta's org server), or a token where
            # no opaque one is taken: what is no JWT (MalformedToken), names another
            # issuer, or has claims its answer could not make acceptable (expired,
            # another audience or client) costs no call. These claims are not
            # verified, so they can only refuse: the answer decides the rest.
            claims = _jws.unverified_claims(token)
            if claims.get("iss") != self.verifier.issuer:
                raise InvalidIssuer("the token was issued by another authorization server")
            self.verifier.validate_claims(
                claims, required=("exp",), required_claims=(), client_required=False
            )
        return self.introspector.introspect(token)

    def confirm(self, token: str, verified: VerifiedToken) -> VerifiedToken:
        """``verified``, once the issuer has said ``token`` is active (a token judged
        by introspection already was, within the cache's time to live)."""
        if not self.judged_locally(token):
            return verified
        return self.introspector.confirm(token, verified)


def _outcome(value: VerifiedToken | _Refusal) -> VerifiedToken:
    if isinstance(value, _Refusal):
        value.raise_()
    return value


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

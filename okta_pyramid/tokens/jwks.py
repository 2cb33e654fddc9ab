"""The issuer's signing keys: the JWK Set (RFC 7517) read strictly, and the cache of
its keys by ``kid``, refetched on an unknown ``kid`` and by a single flight.

The key set's URI comes from the issuer's metadata (:mod:`.discovery`), never from
a token: nothing is fetched because a token asked for it (RFC 8725 §3.10).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from ._jws import b64url_decode
from .capacity import Progress
from .exceptions import IssuerUnavailable, MalformedToken, UnknownKey
from .fetch import FetchError

if TYPE_CHECKING:
    from .discovery import IssuerClient

log = logging.getLogger(__name__)

# RFC 8725 §3.5 / NIST SP 800-131A: RSA keys shorter than this are not trusted.
MIN_RSA_BITS = 2048
# FIPS 186-5 §A.1.1 / NIST SP 800-56B §6.2: the public exponent is odd and above 2**16.
MIN_RSA_EXPONENT = 65537
# After a failed fetch, wait this long before asking the issuer again.
DEFAULT_FAILURE_BACKOFF = 5.0
# At most this many requests wait for a fetch of the keys under way however long it
# runs; the others wait while it runs its normal time (see KeySet), so a stalled
# issuer never holds every server thread. Sized for waitress's default of four.
DEFAULT_MAX_WAITERS = 2
# A request waiting for a fetch under way gives the fetch this long past its deadline
# to hand over its result (the watchdog needs a moment to cut the connection).
_HANDOVER = 0.1
#: An unknown ``kid`` refetches the key set at most this often (seconds).
DEFAULT_JWKS_REFETCH_COOLDOWN = 30.0


def parse_jwks(document: Any) -> tuple[dict[str, RSAPublicKey], str]:
    """Keep the RSA signature keys of a JWK Set (RFC 7517) that can verify RS256."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FetchError("the key set is not a JSON object with a 'keys' array")
    keys: dict[str, RSAPublicKey] = {}
    used: list[dict[str, Any]] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            # A token names its key; one without a name could verify none.
            log.warning("issuer key set: an RSA key has no kid; ignored")
            continue
        if kid in keys:
            log.warning("issuer key set: key %r is listed twice; the first is used", kid[:64])
            continue
        if jwk.get("alg", "RS256") != "RS256":
            continue
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        if "d" in jwk:
            # A private key published by mistake: refuse to rely on it.
            log.warning("issuer key set: key %r carries private material; ignored", kid[:64])
            continue
        problem, key = _rsa_public_key(jwk.get("n"), jwk.get("e"))
        if key is None:
            log.warning("issuer key set: key %r %s; ignored", kid[:64], problem)
            continue
        keys[kid] = key
        used.append({"kid": kid, "n": jwk["n"], "e": jwk["e"]})
    if not keys:
        # No key could verify any token: keep the keys held (stale rather than
        # failing) and answer 503, rather than refuse every valid token as 401.
        raise FetchError("the key set has no usable RS256 signing key")
    fingerprint = json.dumps(used, sort_keys=True)
    return keys, fingerprint


def _uint(value: Any) -> int | None:
    """A Base64urlUInt (RFC 7518 §2): base64url without padding, in its one canonical
    spelling (RFC 4648 §3.5: spare bits zero), of a minimal big-endian integer (no
    leading zero octet, RFC 7518 §6.3.1.1). ``None`` for anything else."""
    try:
        octets = b64url_decode(value)
    except MalformedToken:
        return None
    if not octets or octets[0] == 0:
        return None
    return int.from_bytes(octets, "big")


def _rsa_public_key(n_text: Any, e_text: Any) -> tuple[str, RSAPublicKey | None]:
    """The RSA public key of ``n`` and ``e``, or why it is not trusted."""
    n, e = _uint(n_text), _uint(e_text)
    if n is None or e is None:
        return "has a modulus or exponent that is not a minimal base64url integer", None
    if n.bit_length() < MIN_RSA_BITS:
        return f"is shorter than {MIN_RSA_BITS} bits", None
    # An even modulus is not a product of two large primes; a small or even exponent
    # is not one a sound key generator produces (RFC 8017 §3.1, NIST SP 800-56B).
    if n % 2 == 0:
        return "has an even modulus", None
    if e % 2 == 0:
        return "has an even exponent", None
    if e < MIN_RSA_EXPONENT or e >= n:
        return f"has an exponent below {MIN_RSA_EXPONENT} (or not below the modulus)", None
    try:
        return "", RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return "is not a valid RSA public key", None


class KeySet:
    """The issuer's signing keys by ``kid``, held in memory.

    - A known ``kid`` is a dictionary lookup: no lock, no I/O.
    - An unknown ``kid`` causes at most one refetch per ``refetch_cooldown``, so made-up
      ``kid`` values cannot make us hammer the issuer; a rotated-in key is found that way.
    - Concurrent callers that need a fetch share one (single flight). A fetch ends by
      its deadline (the client's ``http_timeout``), and nobody waits for it past that
      deadline. Every caller waits for a fetch that runs its normal time (its
      :class:`~.capacity.Progress` patience: a quarter of the timeout, or more for an
      issuer whose fetches are slower); once it runs longer, only ``max_waiters``
      callers go on waiting, so a stalled issuer holds a few server threads, never
      all of them. The others are answered then: :class:`IssuerUnavailable`, or
      :class:`UnknownKey` where the ``kid`` is certainly unknown (see
      :meth:`_certainly_unknown`).
    - A failed fetch keeps the keys already held (stale rather than failing) and is not
      retried for ``failure_backoff`` seconds.
    """

    def __init__(
        self,
        client: IssuerClient,
        *,
        refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN,
        failure_backoff: float | None = None,
        max_waiters: int = DEFAULT_MAX_WAITERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refetch_cooldown = refetch_cooldown
        self.failure_backoff = (
            min(DEFAULT_FAILURE_BACKOFF, refetch_cooldown)
            if failure_backoff is None
            else failure_backoff
        )
        self.max_waiters = max_waiters
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        #: Callers waiting for a fetch however long it runs (at most ``max_waiters``).
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        #: ``time.monotonic()`` by which the fetch holding ``_lock`` ends.
        self._fetch_deadline = 0.0
        #: How long fetches take, and when the one under way counts as running long.
        self.progress = Progress(client.http_timeout)
        self._attempts = 0
        self._last_attempt: float | None = None
        self._loaded_attempt: float | None = None
        self._last_error: str | None = None
        self.loaded_at: float | None = None
        #: Increases whenever the set of keys changes (a key added or removed).
        self.generation = 0
        #: Key set fetches attempted, and those that failed (for metrics).
        self.fetches = 0
        self.fetch_failures = 0

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def age(self) -> float | None:
        """Seconds since the key set was last fetched successfully; ``None`` if never."""
        loaded_at = self.loaded_at
        return None if loaded_at is None else max(0.0, self._clock() - loaded_at)

    def get(self, kid: str) -> RSAPublicKey:
        """The key for ``kid``; raises :class:`UnknownKey` or :class:`IssuerUnavailable`."""
        attempt = self._attempts
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._lock.locked() or self._time_until_due() <= 0:
            # Due for a refetch, or one is under way (the warm-up, say): share it
            # rather than call unknown a key it may be bringing.
            shared = self._refresh(attempt, limited=True)
            key = self._keys.get(kid)
            if key is not None:
                return key
            if not shared:
                if self._certainly_unknown():
                    raise UnknownKey("the token's key id (kid) is not in the issuer's key set")
                raise self._unavailable(self._fetch_deadline - time.monotonic())
        if self._last_error is not None:
            raise self._unavailable(self._time_until_due())
        raise UnknownKey("the token's key id (kid) is not in the issuer's key set")

    def refresh(self) -> bool:
        """Fetch the key set now (single flight); True if keys are held afterwards
        and the fetch (this one, or the one under way it shared) ended in time."""
        return self._refresh(self._attempts, limited=False) and bool(self._keys)

    def _refresh(self, attempt: int, *, limited: bool) -> bool:
        """Fetch, unless a fetch has ended since ``attempt`` was read; False when a
        fetch under way could not be waited for (too many waiting, or past its end)."""
        if not self._lock.acquire(blocking=False) and not self._wait_for_fetch(limited):
            return False
        try:
            if self._attempts == attempt:
                self._fetch()
            # else: another thread fetched since `attempt` was read; use its result.
        finally:
            self._lock.release()
        return True

    def _wait_for_fetch(self, limited: bool) -> bool:
        """Wait for the fetch under way, never past its deadline; True with the lock
        held. With ``limited``, a caller beyond ``max_waiters`` waits only while the
        fetch runs its normal time."""
        with self._waiting_lock:
            patient = not limited or self._waiting < self.max_waiters
            if patient:
                self._waiting += 1
        try:
            now = time.monotonic()
            # The fetch's own deadline, or, before its thread has set it (or when it
            # overran it, resolving a name say), at most a whole timeout from now.
            until = self._fetch_deadline
            if until <= now:
                until = now + self.client.http_timeout
            if not patient:
                until = min(until, self.progress.stalled_at())
                if until <= now:
                    return False
            return self._lock.acquire(timeout=until - now + (_HANDOVER if patient else 0))
        finally:
            if patient:
                with self._waiting_lock:
                    self._waiting -= 1

    def _certainly_unknown(self) -> bool:
        """Whether a ``kid`` missing from the keys held is unknown without a fetch.

        True when the keys held come from a fetch that succeeded and began less than
        ``refetch_cooldown`` ago: with no fetch under way, such a ``kid`` is refused
        without asking the issuer (a made-up one), so a fetch that could not be
        waited for changes nothing. Otherwise the ``kid`` may belong to a key that
        fetch is bringing, and the answer is "unavailable, try again".
        """
        started = self._loaded_attempt
        return (
            self._last_error is None
            and started is not None
            and self._clock() - started < self.refetch_cooldown
        )

    def _fetch(self) -> None:
        self._fetch_deadline = time.monotonic() + self.client.http_timeout
        started = self._last_attempt = self._clock()
        self.progress.started()
        began = time.perf_counter()
        answered = False
        try:
            keys, fingerprint = self.client.fetch_keys(deadline=self._fetch_deadline)
            answered = True
        except FetchError as exc:
            answered = exc.status is not None
            self.fetch_failures += 1
            self._last_error = str(exc)
            log.warning(
                "could not fetch the issuer's keys: %s; keeping %d held key(s)",
                exc,
                len(self._keys),
            )
            return
        finally:
            self._attempts += 1
            self.fetches += 1
            self.progress.finished(time.perf_counter() - began if answered else None)
        if fingerprint != self._fingerprint:
            if self._fingerprint is not None:
                log.info("issuer key set changed: %d key(s) now", len(keys))
            self._keys = keys
            self._fingerprint = fingerprint
            self.generation += 1
        self._last_error = None
        self._loaded_attempt = started
        self.loaded_at = self._clock()

    def _time_until_due(self) -> float:
        if self._last_attempt is None:
            return 0.0
        interval = self.failure_backoff if self._last_error else self.refetch_cooldown
        return self._last_attempt + interval - self._clock()

    def _unavailable(self, wait: float) -> IssuerUnavailable:
        return IssuerUnavailable(
            "the issuer's signing keys could not be fetched; try again shortly",
            retry_after=int(wait) + 1 if wait > 0 else int(self.failure_backoff) or 1,
        )

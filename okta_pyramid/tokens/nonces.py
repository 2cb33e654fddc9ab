"""Resource-server DPoP nonces (RFC 9449 §8 and §9), without server-side state.

Time is cut into steps of ``step`` seconds counted from the Unix epoch. The nonce
of step *i* is ``base64url(HMAC-SHA256(secret, label || i))``: anyone holding the
secret computes the same nonce for the same step, so every process (and host)
sharing the secret accepts the nonces of every other, and nothing is stored.

A nonce is accepted during its own step and the next one, so it lives between
``step`` and ``2 * step`` seconds. A client whose nonce is from the previous step
still gets in, and should be handed the current nonce (``DPoP-Nonce`` on the
response, RFC 9449 §8.2) so that it never has to meet a ``use_dpop_nonce`` error
while it keeps calling.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable

from ._jws import b64url_encode

#: Seconds per step: a nonce is accepted for 120 to 240 seconds.
DEFAULT_STEP = 120
#: A shared secret shorter than this is refused (RFC 2104 §3: at least the hash
#: output length is recommended; half of it still leaves 128 bits).
MIN_SECRET_BYTES = 16

_LABEL = b"okta_pyramid DPoP nonce\x00"


class DPoPNonces:
    """Issues and checks the nonces of one secret. Thread-safe."""

    def __init__(
        self,
        secret: bytes | str | None = None,
        *,
        step: int = DEFAULT_STEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None:
            # One process alone: its nonces mean nothing to another process.
            secret = secrets.token_bytes(32)
        elif isinstance(secret, str):
            secret = secret.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the DPoP nonce secret must be at least {MIN_SECRET_BYTES} bytes")
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise ValueError("the DPoP nonce step must be a whole number of seconds >= 1")
        self._secret = secret
        self.step = step
        self.clock = clock
        #: (step index, its nonce, the previous step's nonce), replaced as a whole
        self._current: tuple[int, str, str] = (-1, "", "")

    @property
    def lifetime(self) -> tuple[int, int]:
        """The shortest and longest time, in seconds, that an issued nonce is accepted."""
        return self.step, 2 * self.step

    def issue(self) -> str:
        """The nonce to send now (``DPoP-Nonce``)."""
        return self._nonces()[1]

    def check(self, nonce: str) -> bool:
        """True if ``nonce`` is the nonce of the current or of the previous step."""
        _, current, previous = self._nonces()
        if not isinstance(nonce, str) or not nonce.isascii():
            return False
        encoded = nonce.encode("ascii")
        # Both comparisons always run, in constant time.
        return hmac.compare_digest(encoded, current.encode("ascii")) | hmac.compare_digest(
            encoded, previous.encode("ascii")
        )

    def is_current(self, nonce: str) -> bool:
        """True if ``nonce`` is the current step's nonce; an accepted nonce that is not
        current expires when this step ends, so a fresh one should be sent."""
        current = self._nonces()[1]
        return (
            isinstance(nonce, str)
            and nonce.isascii()
            and hmac.compare_digest(nonce.encode("ascii"), current.encode("ascii"))
        )

    def expires_in(self) -> float:
        """Seconds until the current nonce stops being accepted."""
        now = self.clock()
        return (math.floor(now / self.step) + 2) * self.step - now

    def _nonces(self) -> tuple[int, str, str]:
        index = math.floor(self.clock() / self.step)
        cached = self._current
        if cached[0] != index:
            # Two threads may compute this at once; both get the same values.
            cached = self._current = (index, self._mac(index), self._mac(index - 1))
        return cached

    def _mac(self, index: int) -> str:
        message = _LABEL + index.to_bytes(8, "big", signed=True)
        return b64url_encode(hmac.new(self._secret, message, hashlib.sha256).digest())

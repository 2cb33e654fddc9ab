"""What the parser makes of the ``okta.*`` settings: frozen dataclasses the rest of
the add-on reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..tokens.capacity import DEFAULT_SERVER_THREADS
from ..tokens.dpop import DEFAULT_ALGORITHMS as DEFAULT_DPOP_ALGORITHMS
from ..tokens.dpop import DEFAULT_MAX_AGE as DEFAULT_DPOP_MAX_AGE
from ..tokens.fetch import DEFAULT_HTTP_TIMEOUT
from ..tokens.introspection import DEFAULT_CACHE_TTL as DEFAULT_INTROSPECTION_CACHE_TTL
from ..tokens.jwks import DEFAULT_JWKS_REFETCH_COOLDOWN
from ..tokens.replay import DEFAULT_MAX_ENTRIES as DEFAULT_DPOP_REPLAY_STORE_SIZE
from ..tokens.shared import DEFAULT_TIMEOUT as DEFAULT_SHARED_STORE_TIMEOUT
from ..tokens.verifier import DEFAULT_AUDIENCE, DEFAULT_LEEWAY, DEFAULT_TOKEN_CACHE_SIZE

DEFAULT_CORS_MAX_AGE = 600
DEFAULT_JWKS_REFRESH_INTERVAL = 300.0
DEFAULT_GROUPS_CLAIM = "groups"
#: By default one DPoP key may hold this share of the replay store.
DPOP_REPLAY_KEY_SHARE = 8


@dataclass(frozen=True)
class OktaSettings:
    """Validated ``okta.*`` settings."""

    issuer: str
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    client_ids: tuple[str, ...] = ()
    leeway: int = DEFAULT_LEEWAY
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    jwks_refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN
    protect_all: bool = True
    cors_allowed_origins: tuple[str, ...] = ()
    cors_max_age: int = DEFAULT_CORS_MAX_AGE
    realm: str = "api"
    console: bool = False
    jwks_refresh_interval: float = DEFAULT_JWKS_REFRESH_INTERVAL
    environment: str = "development"
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    #: ``(name, value)`` pairs; ``value`` is ``None`` when the claim need only be present.
    required_claims: tuple[tuple[str, str | None], ...] = ()
    principals_callback: Callable[..., Any] | None = None
    token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE
    #: ``allowed``, ``required`` or ``disabled`` (docs/dpop.md).
    dpop: str = "allowed"
    dpop_algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    dpop_max_age: int = DEFAULT_DPOP_MAX_AGE
    dpop_nonce: bool = False
    #: ``None``: a random secret per process. Kept out of the dataclass's repr.
    dpop_nonce_secret: str | None = field(default=None, repr=False)
    #: Proofs (DPoP ``jti``) remembered at once, and the most one key may hold.
    dpop_replay_store_size: int = DEFAULT_DPOP_REPLAY_STORE_SIZE
    dpop_replay_key_quota: int = DEFAULT_DPOP_REPLAY_STORE_SIZE // DPOP_REPLAY_KEY_SHARE
    #: The API's external base URL (the application root), without a trailing slash.
    public_url: str | None = None
    #: ``okta.public_url = from-proxy``: the operator says the proxy in front sets the
    #: Host header, so the request's own URL may be trusted for DPoP's ``htu``.
    public_url_from_proxy: bool = False
    #: Token introspection (RFC 7662, docs/introspection.md); off when ``None``.
    introspection: IntrospectionSettings | None = None
    #: Every protected view needs a live token (introspection), not only those that
    #: say ``require_active_token=True``.
    introspect_all: bool = False
    #: The issuer is Okta's org authorization server: its tokens are judged by
    #: introspection alone, never locally.
    org_server: bool = False
    #: The Redis URL of the state the processes share (docs/deployment.md); ``None``:
    #: each process keeps its own. Kept out of the repr: it may hold a password.
    shared_store: str | None = field(default=None, repr=False)
    shared_store_timeout: float = DEFAULT_SHARED_STORE_TIMEOUT
    #: Replicas that must hold a DPoP proof's mark before the proof is accepted
    #: (Redis ``WAIT``); 0: the primary's word is enough.
    shared_store_min_replicas: int = 0
    #: ``/metrics`` in the Prometheus text format (docs/metrics.md).
    metrics: bool = False
    #: The request threads of each process (waitress's ``threads``): the limits on
    #: waiting for the issuers are sized to it (docs/introspection.md).
    server_threads: int = DEFAULT_SERVER_THREADS
    #: ``/.well-known/oauth-protected-resource`` and ``resource_metadata`` in every
    #: challenge (RFC 9728, docs/discovery.md).
    resource_metadata: bool = True
    #: The metadata's ``scopes_supported``: ``None`` derives them from the ACLs, ``()``
    #: leaves the member out.
    scopes_supported: tuple[str, ...] | None = None
    #: The metadata's ``resource_name``, ``resource_documentation``,
    #: ``resource_policy_uri`` and ``resource_tos_uri`` (RFC 9728 §2).
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    #: Every trusted authorization server, one per line of ``okta.issuer``, in order.
    #: ``issuer``, ``audiences``, ``client_ids``, ``required_claims`` and ``org_server``
    #: above are the first one's (with one line, the only one's).
    issuers: tuple[IssuerSettings, ...] = ()

    def __post_init__(self) -> None:
        if not self.issuers:
            # Built from the fields above (a test, or code that builds settings itself).
            object.__setattr__(
                self,
                "issuers",
                (
                    IssuerSettings(
                        self.issuer,
                        self.audiences,
                        self.client_ids,
                        self.required_claims,
                        self.org_server,
                    ),
                ),
            )


@dataclass(frozen=True)
class IssuerSettings:
    """One trusted authorization server: a line of ``okta.issuer``, with the
    settings that apply to its tokens."""

    issuer: str
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    client_ids: tuple[str, ...] = ()
    #: ``okta.required_claims``, then the line's own ``require=`` options.
    required_claims: tuple[tuple[str, str | None], ...] = ()
    #: Okta's org authorization server, judged by introspection alone.
    org_server: bool = False
    #: Tokens that are not JWTs go to this issuer's introspection endpoint
    #: (``opaque=true``); without it they are refused with no call.
    opaque: bool = False


@dataclass(frozen=True)
class IntrospectionSettings:
    """How the API authenticates to the introspection endpoint, and the cache."""

    client_id: str
    auth_method: str = "client_secret_basic"
    #: Kept out of the repr: a secret never reaches a log line.
    client_secret: str | None = field(default=None, repr=False)
    #: The private_key_jwt key, loaded and checked at start-up.
    private_key: Any = field(default=None, repr=False)
    key_id: str | None = None
    cache_ttl: int = DEFAULT_INTROSPECTION_CACHE_TTL
    #: ``okta.introspection_endpoint``; ``None``: the issuer's metadata names it.
    endpoint: str | None = None

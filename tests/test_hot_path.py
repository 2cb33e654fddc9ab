"""Shortcuts on the per-request path keep their answers.

The policy skips parsing an empty query string, sets ``Vary`` without parsing
when there is none yet, and the verifier decodes JSON as strict UTF-8.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import webtest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.tokens.exceptions import MalformedToken
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from .helpers import webtest_app
from .issuer import LoopbackIssuer


@pytest.mark.parametrize("query", ["access_token=x", "a=1&access_token=x", "access%5Ftoken=x"])
def test_a_token_in_the_query_string_is_still_refused(
    app: webtest.TestApp, issuer: LoopbackIssuer, query: str
) -> None:
    response = app.get(
        f"/api/whoami?{query}", headers={"Authorization": f"Bearer {issuer.mint()}"}, status=400
    )
    assert response.json["error"] == "invalid_request"


def test_an_unrelated_query_string_is_fine(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    app.get(
        "/api/whoami?verbose=1", headers={"Authorization": f"Bearer {issuer.mint()}"}, status=200
    )


def test_vary_authorization_is_added_once(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    response = app.get("/api/whoami", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert response.headers.getall("Vary") == ["Authorization"]


def test_vary_authorization_joins_a_view_s_own_vary(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    def negotiated(request: Request) -> dict[str, Any]:
        request.response.vary = ("Accept",)
        return {"subject": request.authenticated_userid}

    config.add_route("negotiated", "/negotiated")
    config.add_view(
        negotiated, route_name="negotiated", renderer="json", permission=NO_PERMISSION_REQUIRED
    )
    app = webtest_app(config)
    response = app.get("/negotiated", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert response.json == {"subject": "alice@example.com"}
    assert response.headers["Vary"] == "Accept, Authorization"


def test_claims_that_are_not_utf8_are_malformed(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    key = issuer.keys[0]
    latin1 = f'{{"iss": "{issuer.issuer}", "sub": "caf\xe9"}}'.encode("latin-1")
    token = jwt.api_jws.encode(latin1, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    with pytest.raises(MalformedToken, match="not JSON"):
        verifier.verify(token)

"""The smallest application built on the add-on: its own views, its own root
factory when asked, and nothing else. The add-on tests build it in process; the
packaging test runs this file with the installed wheel and nothing more."""

from __future__ import annotations

import sys

from pyramid.authorization import Allow, Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.router import Router


class Shop:
    """The application's own root: its ACL, not the add-on's, decides."""

    __acl__ = ((Allow, Everyone, "browse"), (Allow, Authenticated, "buy"))

    def __init__(self, request: object) -> None:
        self.request = request


def make_app(issuer: str, audience: str, own_root: bool = False) -> Router:
    settings = {"okta.issuer": issuer, "okta.audience": audience, "okta.protect_all": "false"}
    with Configurator(settings=settings, root_factory=Shop if own_root else None) as config:
        config.include("okta_pyramid")
        config.add_route("catalogue", "/catalogue")
        config.add_route("basket", "/basket")
        config.add_view(
            lambda request: {"root": type(request.context).__name__},
            route_name="catalogue",
            renderer="json",
            permission="browse",
        )
        config.add_view(
            lambda request: {"buyer": request.authenticated_userid},
            route_name="basket",
            renderer="json",
            permission="buy",
        )
    return config.make_wsgi_app()


if __name__ == "__main__":
    # python tiny_app.py ISSUER AUDIENCE: serve on a free loopback port, say which.
    import waitress.server

    server = waitress.server.create_server(
        make_app(sys.argv[1], sys.argv[2], own_root=True), host="127.0.0.1", port=0
    )
    print(f"http://127.0.0.1:{server.effective_port}", flush=True)  # noqa: T201 - the test reads it
    server.run()

"""The demonstration API's routes."""

from __future__ import annotations

from pyramid.config import Configurator

from .resources import ApiResource, SenderConstrained


def includeme(config: Configurator) -> None:
    config.add_route("hello", "/api/hello")
    config.add_route("whoami", "/api/whoami")
    config.add_route("sensitive", "/api/sensitive")
    config.add_route("messages", "/api/messages", factory=ApiResource)
    config.add_route("admin", "/api/admin", factory=ApiResource)
    config.add_route("dpop", "/api/dpop", factory=SenderConstrained)

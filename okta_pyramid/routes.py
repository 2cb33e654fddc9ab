from __future__ import annotations

from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("hello", "/api/hello")
    config.add_route("whoami", "/api/whoami")

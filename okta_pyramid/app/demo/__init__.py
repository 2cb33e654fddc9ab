"""The demonstration API of the okta_pyramid application (not part of the add-on)."""

from __future__ import annotations

from pyramid.config import Configurator

from .messages import MessageStore


def includeme(config: Configurator) -> None:
    """Add the demonstration API's routes, views and message board to an application
    that has included the add-on."""
    config.include(".routes")
    config.include(".messages")
    config.include(".exception_views")
    config.registry.message_store = MessageStore()
    config.scan()

"""Views of the okta_pyramid application (not part of the add-on)."""

"""Verify OAuth 2.0 access tokens (JWTs); knows nothing of Pyramid."""

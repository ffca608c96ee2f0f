"""The converted.in feed service (see :mod:`include.feed_service.app`)."""

from include.feed_service.app import create_app, envelope

__all__ = ["create_app", "envelope"]

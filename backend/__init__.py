"""Shopwise: explained product recommendations with a chat assistant."""

__version__ = "0.1.0"

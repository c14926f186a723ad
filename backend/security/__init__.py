"""Credentials: password hashing, API keys, access tokens. No HTTP here."""

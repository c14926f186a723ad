"""Domain errors. Services raise these; the API maps them to HTTP in one place."""

from __future__ import annotations


class ShopwiseError(Exception):
    """Base for errors whose message is safe to show to the caller."""


class NotFoundError(ShopwiseError):
    def __init__(self, entity: str, identifier: object) -> None:
        super().__init__(f"{entity} {identifier} not found")
        self.entity = entity
        self.identifier = identifier


class InvalidInputError(ShopwiseError):
    """The request is well-formed but asks for something that cannot be done."""


class ConflictError(ShopwiseError):
    """The request clashes with the current state (a duplicate name, an ended experiment)."""

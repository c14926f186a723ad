"""Text accepted from clients: no control or bidi-override characters, URLs of safe schemes.

A NUL byte breaks PostgreSQL text and C consumers; other control characters corrupt logs
and terminals; the bidi overrides (U+202A–U+202E, U+2066–U+2069) make a name read
differently from what it is. They are refused at the boundary (422), with the field named,
through one annotated type used by every request model. The JSON schema carries the same
rule as a ``pattern``, so clients and fuzzers know it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

_BIDI = r"\u202a-\u202e\u2066-\u2069"
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_LAYOUT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # controls except tab, newline, return


class _Refusal:
    """Pydantic marker: a check after the type's own validation, whose rule the JSON schema
    states as ``pattern``."""

    _pattern: str

    def _check(self, value: str) -> str:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self._pattern
        return json_schema


class _NoControls(_Refusal):
    """Refuses control characters (``multiline``: except tab and newlines) and bidi."""

    def __init__(self, *, multiline: bool) -> None:
        forbidden = (_LAYOUT if multiline else _CONTROLS) + _BIDI
        self._bad = re.compile(f"[{forbidden}]")
        self._pattern = f"^[^{forbidden}]*$"
        self._what = (
            "control characters other than tab and newline" if multiline else ("control characters")
        )

    def _check(self, value: str) -> str:
        found = self._bad.search(value)
        if found is not None:
            raise PydanticCustomError(
                "unsafe_text",
                "must not contain {what} or bidirectional overrides (found U+{code})",
                {"what": self._what, "code": f"{ord(found.group()):04X}"},
            )
        return value


# One line of text: names, categories, tags, queries, ids, usernames.
SafeText = Annotated[str, _NoControls(multiline=False)]
# Prose that may have tabs and line breaks: descriptions, chat messages, templates.
SafeMultilineText = Annotated[str, _NoControls(multiline=True)]


# The rule is the regular expression itself (no lookarounds, so it reads the same in Python
# and in the schema's ECMA dialect): an http(s) URL with a host, or a path on this site,
# "/x" or "x/y" (never "//host", a backslash, or a "scheme:" before the first slash).
_URL_CHARS = r"\x00-\x20\x7f-\x9f\u202a-\u202e\u2066-\u2069\\"
URL_PATTERN = (
    rf"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^{_URL_CHARS}/?#@]+(?:[/?#][^{_URL_CHARS}]*)?"
    rf"|/(?:[^{_URL_CHARS}/][^{_URL_CHARS}]*)?"
    rf"|[^{_URL_CHARS}/:][^{_URL_CHARS}/:]*(?:/[^{_URL_CHARS}]*)?)$"
)
_URL = re.compile(URL_PATTERN)


class _UrlOrPath(_Refusal):
    _pattern = URL_PATTERN

    def _check(self, value: str) -> str:
        if _URL.match(value) is None:
            raise PydanticCustomError(
                "unsafe_url",
                "must be an http(s) URL or a path on this site (no other scheme, no spaces "
                "or control characters)",
            )
        return value


SafeUrl = Annotated[str, _UrlOrPath()]

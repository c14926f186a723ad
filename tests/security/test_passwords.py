"""Password hashing at the parameters a served app uses. The rest of the suite hashes at
argon2's cheapest (``tests/conftest.py``, ``cheap_password_hashing``), so these run in a
fresh interpreter, where nothing has replaced the module's hasher."""

from __future__ import annotations

from tests.fresh_process import fresh_python, last_json

CHECK = """
import json
from argon2 import PasswordHasher
from backend.security.passwords import hash_password, verify_password
stored = hash_password("correct horse battery")
try:
    hash_password("too short")
    short = "accepted"
except ValueError:
    short = "refused"
defaults = PasswordHasher()
print(json.dumps({
    "prefix": stored.split("$")[1],
    "parameters": stored.split("$")[3],
    "expected": f"m={defaults.memory_cost},t={defaults.time_cost},p={defaults.parallelism}",
    "right": verify_password("correct horse battery", stored),
    "wrong": verify_password("correct horse battery!", stored),
    "no_account": verify_password("not-a-real-password", None),
    "garbage": verify_password("correct horse battery", "not a hash"),
    "short": short,
}))
"""


def test_a_served_app_hashes_with_argon2id_at_its_default_cost():
    seen = last_json(fresh_python(CHECK))
    assert seen["prefix"] == "argon2id"
    # argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes)
    assert seen["parameters"] == seen["expected"] == "m=65536,t=3,p=4"
    assert seen["right"] is True
    assert seen["wrong"] is False
    # the dummy hash that keeps an unknown user's login as slow as a known one's
    assert seen["no_account"] is False
    assert seen["garbage"] is False
    assert seen["short"] == "refused"

from __future__ import annotations

import pytest

from backend.config import SettingsError, load_settings


def test_embedded_defaults(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'shopwise.db'}"
    assert settings.chroma_path == tmp_path / "chroma"
    assert settings.redis_url is None and settings.openai_api_key is None


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("REDIS_URL", "http://localhost", "REDIS_URL"),
        ("DEFAULT_TOP_N", "0", "DEFAULT_TOP_N"),
        ("LLM_TEMPERATURE", "3", "LLM_TEMPERATURE"),
        ("OPENAI_BASE_URL", "not a url", "OPENAI_BASE_URL"),
        ("API_PORT", "99999", "API_PORT"),
        ("PROMPTS_DIR", "/nonexistent/prompts", "PROMPTS_DIR"),
    ],
)
def test_invalid_environment_fails_naming_the_variable(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=named):
        load_settings(_env_file=None)


def test_blank_api_key_means_no_llm(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    assert load_settings(_env_file=None).openai_api_key is None

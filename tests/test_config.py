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


def test_llm_concurrency_is_one_for_a_model_server_on_this_machine_unless_set():
    def concurrency(url: str, **extra: object) -> int:
        config = load_settings(_env_file=None, openai_base_url=url, **extra)
        return config.explanation_concurrency

    assert concurrency("http://127.0.0.1:8080/v1") == 1  # llama.cpp answers one at a time
    assert concurrency("http://localhost:11434/v1") == 1
    assert concurrency("https://api.openai.com/v1") == 4
    assert concurrency("http://localhost:8080/v1", llm_concurrency=3) == 3

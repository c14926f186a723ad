"""The ``shopwise`` command on a fresh SQLite database: every verb is there, errors exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.cli.evaluate import command_line
from backend.config import PROJECT_ROOT

VERBS = [
    "migrate", "seed", "serve", "worker", "segments", "index", "train", "evaluate",
    "keys", "admins", "tokens", "import",
]  # fmt: skip


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run a command with settings from a clean environment and a database in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name in ("DATABASE_URL", "REDIS_URL", "SHOPWISE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_JSON", "false")
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0):
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, (result.output, result.stderr, result.exception)
        return result

    return run


def test_help_lists_every_verb(cli):
    listed = cli("--help").output
    for verb in VERBS:
        assert f" {verb} " in listed
    assert "amazon" in cli("import", "--help").output
    assert {"create", "revoke", "list"} <= set(cli("keys", "--help").output.split())


def test_the_installed_script_and_python_m_run_this_app():
    (script,) = entry_points(group="console_scripts", name="shopwise")
    assert script.value == "backend.cli:app"
    assert script.load() is app
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "serve" in done.stdout and "worker" in done.stdout


def test_migrate_then_seed_twice_adds_nothing_the_second_time(cli, tmp_path):
    assert "database at revision" in cli("migrate").output
    assert (tmp_path / "shopwise.db").is_file()
    products = len(json.loads((PROJECT_ROOT / "seed_data/products.json").read_text()))
    first = cli("seed").output
    assert f"added {products} products" in first
    again = cli("seed").output
    assert "added 0 products, 0 users, 0 interactions" in again


def test_seed_from_another_folder(cli, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("products", "users", "interactions"):
        (folder / f"{name}.json").write_text("[]")
    assert "added 0 products" in cli("seed", "--seed-dir", str(folder)).output


def test_key_lifecycle(cli):
    created = cli("keys", "create", "--name", "shop", "--scope", "recommendations:read").output
    key_id = created.split()[1]
    assert "key:    sw_" in created and "cannot be shown again" in created
    listed = cli("keys", "list").output
    assert key_id in listed and "active" in listed and "sw_" in listed
    secret = created.split("key:")[1].split()[0]
    assert secret not in listed  # never shown again
    assert f"revoked {key_id}" in cli("keys", "revoke", key_id).output
    assert "revoked 20" in cli("keys", "list").output


def test_token_lifecycle(cli, monkeypatch):
    """A shopper token minted by a key is listed under that key and dies when revoked here."""
    monkeypatch.setenv("JWT_SECRET", "s" * 40)  # keys and tokens verify across processes
    from backend.cli.common import settings
    from backend.db.engine import make_engine
    from backend.services.auth import AuthError, AuthService

    created = cli("keys", "create", "--name", "shop", "--scope", "shoppers:act").output
    key_id, secret = created.split()[1], created.split("key:")[1].split()[0]
    config = settings()  # the commands' own: same database, same key pepper
    auth = AuthService(db=make_engine(config.database_url), settings=config)
    issued = auth.shopper_session(None, minter=auth.authenticate_key(secret))
    token_id = auth.authenticate_token(issued.access_token).token_id
    assert token_id is not None

    listed = cli("tokens", "list", "--key", key_id).output
    assert token_id in listed and "shopper" in listed
    assert issued.access_token not in listed  # the token itself is never shown
    assert cli("tokens", "list", "--key", str(uuid.uuid4())).output == ""
    assert f"revoked {token_id}" in cli("tokens", "revoke", token_id).output
    with pytest.raises(AuthError):
        auth.authenticate_token(issued.access_token)
    assert token_id not in cli("tokens", "list").output


def test_key_rate_limit_round_trip(cli):
    created = cli(
        "keys", "create", "--name", "shop", "--scope", "events:write", "--rate-limit", "3"
    ).output
    key_id = created.split()[1]
    assert "limit:  3/min" in created
    assert "3/min" in cli("keys", "list").output
    assert "limit 9/min" in cli("keys", "set-limit", key_id, "9").output
    assert "9/min" in cli("keys", "list").output
    assert "limit 60000/min (default)" in cli("keys", "set-limit", key_id, "default").output
    assert "60000/min (default)" in cli("keys", "list").output
    plain = cli("keys", "create", "--name", "web", "--scope", "events:write").output
    assert "limit:  60000/min (default)" in plain


@pytest.mark.parametrize("bad", ["0", "-1", "1000001", "99999999999999999999", "ten", "2.5", ""])
def test_a_bad_key_rate_limit_exits_2_and_changes_nothing(cli, bad):
    created = cli("keys", "create", "--name", "shop", "--scope", "events:write").output
    key_id = created.split()[1]
    before = cli("keys", "list").output
    for args in (
        ["keys", "create", "--name", "x", "--scope", "events:write", f"--rate-limit={bad}"],
        ["keys", "set-limit", "--", key_id, bad],
    ):
        result = cli(*args, code=2)
        assert result.stderr.strip() and "Traceback" not in result.output + result.stderr
    assert cli("keys", "list").output == before


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "set-limit", "not-a-uuid", "5"],
        ["keys", "set-limit", str(uuid.uuid4()), "5"],
        ["keys", "create", "--name", "shop", "--scope", "everything:write"],
        ["tokens", "revoke", "0123abcd"],
        ["tokens", "list", "--user", "not-a-uuid"],
        ["keys", "revoke", "not-a-uuid"],
        ["keys", "revoke", str(uuid.uuid4())],
        ["admins", "create", "--username", "ada", "--password", "short"],
        ["admins", "create", "--username", "ada", "--role", "owner", "--password", "x" * 16],
        ["worker", "--burst"],
        ["evaluate", "--dataset", "/nonexistent/dataset"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_bad_input_exits_2_with_a_message(cli, args):
    result = cli(*args, code=2)
    assert result.stderr.strip()
    assert "Traceback" not in result.output + result.stderr


def test_invalid_environment_names_the_variable(cli, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://nowhere")
    assert "DATABASE_URL" in cli("migrate", code=2).stderr


def test_admin_password_is_asked_twice_or_read_from_the_environment(cli, monkeypatch):
    typed = "correct horse battery"
    assert (
        "created admin ada"
        in cli("admins", "create", "--username", "ada", input=f"{typed}\n{typed}\n").output
    )
    monkeypatch.setenv("SHOPWISE_ADMIN_PASSWORD", typed)
    assert (
        "created editor eve"
        in cli("admins", "create", "--username", "eve", "--role", "editor").output
    )


def test_segments_on_an_empty_shop(cli):
    assert "nothing stored" in cli("segments").output


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["shopwise", "evaluate", "--dataset", "d", "--quick"], "--dataset d --quick"),
        (["shopwise", "evaluate", "--dataset=d"], "--dataset d"),
        (["shopwise", "evaluate", "--quick", "--dataset", "d"], "--dataset d"),
    ],
)
def test_evaluation_report_names_the_command(argv, expected):
    assert command_line(argv, Path("d")) == f"shopwise evaluate {expected}"


@pytest.mark.slow
def test_index_then_train_a_small_shop(cli, tmp_path):
    """The commands that need the whole application: a dozen products, their shoppers."""
    folder = tmp_path / "small"
    folder.mkdir()
    products = json.loads((PROJECT_ROOT / "seed_data/products.json").read_text())[:12]
    kept = {p["id"] for p in products}
    interactions = [
        i
        for i in json.loads((PROJECT_ROOT / "seed_data/interactions.json").read_text())
        if i["product_id"] in kept
    ]
    users = [
        u
        for u in json.loads((PROJECT_ROOT / "seed_data/users.json").read_text())
        if u["id"] in {i["user_id"] for i in interactions}
    ]
    for name, rows in (("products", products), ("users", users), ("interactions", interactions)):
        (folder / f"{name}.json").write_text(json.dumps(rows))
    cli("seed", "--seed-dir", str(folder))
    indexed = cli("index").output
    assert "vector store:" in indexed and "(12 vectors)" in indexed
    assert "trained" in cli("train").output


def test_the_worker_lowers_its_cpu_priority_below_the_apis():
    """In a process of its own (the test's would stay lowered): the nice value rises by
    the worker's default, capped by the system at 19."""
    code = (
        "import os; from backend.cli.worker import WORKER_NICENESS, lower_priority; "
        "before = os.nice(0); print(before, lower_priority(WORKER_NICENESS), WORKER_NICENESS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout.split()
    before, after, step = map(int, out)
    assert step > 0 and after == min(before + step, 19)


def test_the_workers_niceness_is_bounded(cli):
    result = CliRunner().invoke(app, ["worker", "--niceness", "20"])
    assert result.exit_code == 2 and "niceness" in result.output


def test_the_worker_loads_what_it_keeps_and_freezes_it_before_the_first_event(monkeypatch):
    """Its full collections then skip the snapshot, the models and the libraries it
    imported for its segments and training (243 ms of CPU each, unfrozen)."""
    import gc
    from types import SimpleNamespace

    import backend.recommender.segments as segments
    from backend.cli.worker import settle

    loaded: list[str] = []
    collections: list[int] = []

    def load_snapshot() -> None:
        loaded.append("snapshot")
        kept = [[n] for n in range(20_000)]  # alive: enough for several collections
        assert len(kept) == 20_000

    monkeypatch.setattr(segments, "load_clustering", lambda: loaded.append("clustering"))
    components = SimpleNamespace(
        snapshots=SimpleNamespace(get=load_snapshot),
        settings=SimpleNamespace(segment_recompute_threshold=1000),
        training=SimpleNamespace(next_item=False),
    )
    held = [[n] for n in range(1000)]  # tracked objects alive at the freeze
    gc.unfreeze()

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and "snapshot" in loaded and "clustering" not in loaded:
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        settle(components)  # type: ignore[arg-type]
        assert loaded == ["snapshot", "clustering"]
        assert collections == []  # none while loading: one, at the end, before the freeze
        assert gc.get_freeze_count() >= len(held)
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()


def test_the_workers_niceness_can_come_from_the_environment(cli, monkeypatch):
    """A container sets WORKER_NICENESS instead of editing its command line."""
    from backend.cli import worker as worker_cli

    asked: list[int] = []
    monkeypatch.setattr(worker_cli, "lower_priority", asked.append)
    monkeypatch.setenv("WORKER_NICENESS", "19")
    assert "needs REDIS_URL" in cli("worker", code=2).output  # (lowered before that check)
    assert asked == [19]
    monkeypatch.setenv("WORKER_NICENESS", "20")
    assert "niceness" in cli("worker", code=2).output

"""An editor's template cannot tie up a worker: every render has a time, loop and output
budget, refused with a 422 naming the limit in save and preview; the shipped templates
render as before."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.llm.prompts import PromptLibrary, RenderBudget, TemplateBudgetExceeded
from backend.services.prompt_checks import trial_render
from tests.settings import ADMIN_AUTH, sqlite_url, with_admin_token

NESTED = (
    "{{ user_name }}{% for item in items %}{{ item.name }}{% endfor %}"
    "{% for i in range(3000) %}{% for j in range(3000) %}{% set k = i * j %}{% endfor %}"
    "{% endfor %}"
)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here; the prompt store itself is tested on both databases."""
    return sqlite_url(tmp_path)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_admin_token(settings)


@pytest.mark.parametrize("path", ["", "/preview"])
def test_nested_ranges_are_refused_by_save_and_preview(api: TestClient, path: str):
    before = api.get("/admin/prompts/explanation.j2", headers=ADMIN_AUTH).json()
    method = "POST" if path else "PUT"
    r = api.request(
        method, f"/admin/prompts/explanation.j2{path}", headers=ADMIN_AUTH, json={"source": NESTED}
    )
    assert r.status_code == 422, r.text
    assert "loop limit" in r.json()["detail"]
    after = api.get("/admin/prompts/explanation.j2", headers=ADMIN_AUTH).json()
    assert after["source"] == before["source"]  # nothing stored


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{% for i in range(100001) %}{% endfor %}", "loop limit"),
        ("{% for i in range(400) %}{% for j in range(400) %}{% endfor %}{% endfor %}", "loop"),
        ("{{ 'x' * 10**9 }}", "output limit"),
        ("{{ 'x'|center(10**9) }}", "output limit"),
        ("{{ 'x'|center(1000000000) }}", "output limit"),  # constant: would fold at compile
        ("{{ 'x'|indent(10**9, true) }}", "output limit"),
        ("{{ 'x'.ljust(10**9) }}", "output limit"),
        ("{{ '{:>999999999}'.format(1) }}", "output limit"),
        ("{{ lipsum(10**6) }}", "output limit"),
        ("{% for i in range(99999) %}{{ 'abc' }}{% endfor %}", "output limit"),
        ("{% set x = ['ab'] * 300000 %}", "output limit"),
        ("{{ 2 ** 100000 }}", "number limit"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
    ],
)
def test_expensive_templates_are_stopped(source: str, limit: str):
    library = PromptLibrary(PROJECT_ROOT / "prompts").with_draft("t.j2", source)
    with pytest.raises(TemplateBudgetExceeded, match=limit):
        library.render("t.j2")


def test_the_time_limit_stops_the_render_in_its_own_thread():
    slow = (
        "{% for i in range(200) %}{% for j in range(200) %}{{ i * j % 7 }}{% endfor %}{% endfor %}"
    )
    budget = RenderBudget(seconds=0.001, loop_iterations=10**9, output_chars=10**9)
    library = PromptLibrary(PROJECT_ROOT / "prompts", budget=budget).with_draft("t.j2", slow)
    threads = threading.active_count()
    with pytest.raises(TemplateBudgetExceeded, match="time limit"):
        library.render("t.j2")
    assert threading.active_count() == threads  # nothing left running


def test_the_budget_comes_from_settings(tmp_path):
    from backend.wiring import build_components

    config = load_settings(
        _env_file=None, data_dir=tmp_path, prompts_dir=PROJECT_ROOT / "prompts",
        template_max_loop_iterations=500, template_max_output_chars=5000,
        template_render_seconds=1.5,
    )  # fmt: skip
    prompts = build_components(config).prompts
    assert prompts.budget == RenderBudget(seconds=1.5, loop_iterations=500, output_chars=5000)
    assert prompts.with_draft("x.j2", "x").budget == prompts.budget


@pytest.mark.parametrize("name", PromptLibrary(PROJECT_ROOT / "prompts").names())
def test_every_shipped_template_still_renders_within_the_default_budget(name: str):
    library = PromptLibrary(PROJECT_ROOT / "prompts")
    library.validate(name, library.file_source(name))
    trial_render(library, name, max_tokens=150)


def test_an_honest_render_never_reads_the_cpu_clock(monkeypatch):
    """The CPU clock is a system call (a moment for the kernel to reschedule the request
    thread); until half the budget has passed on the wall clock it cannot be spent."""
    import backend.llm.prompts as prompts

    reads = []
    real = prompts.time.thread_time
    monkeypatch.setattr(prompts.time, "thread_time", lambda: reads.append(1) or real())
    source = "{% for i in range(500) %}{{ i * 2 }}{% endfor %}"  # a few hundred ticks
    library = PromptLibrary(PROJECT_ROOT / "prompts").with_draft("t.j2", source)
    assert library.render("t.j2").startswith("024")
    assert reads == []

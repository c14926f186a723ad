"""Runtime prompt versions: the library serves the newest stored version, else the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from backend.db.engine import make_engine
from backend.llm.prompt_store import PromptStore
from backend.llm.prompts import PromptError, PromptLibrary


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "greet.j2").write_text("Hello {{ name }}{% if title %}, {{ title }}{% endif %}")
    return tmp_path


def test_a_stored_version_is_served_at_once_and_a_reset_brings_the_file_back(db, folder):
    store = PromptStore(db)
    library = PromptLibrary(folder, store)
    assert library.render("greet.j2", name="Ann", title="") == "Hello Ann"
    file_version = library.version("greet.j2")
    assert file_version.startswith("file:")

    stored = store.add("greet.j2", "Welcome back, {{ name }}", author="pm@shop")
    assert (stored.version, stored.author) == (1, "pm@shop")
    assert library.render("greet.j2", name="Ann", title="") == "Welcome back, Ann"
    assert library.version("greet.j2") == "db:1"
    assert library.source("greet.j2").origin == "db"

    store.add("greet.j2", None, author="pm@shop", note="back to the file")
    assert library.render("greet.j2", name="Ann", title="") == "Hello Ann"
    assert library.version("greet.j2") == file_version
    assert [v.version for v in store.history("greet.j2")] == [2, 1]


def test_other_processes_see_a_new_version_within_the_ttl(db, folder):
    clock = Clock()
    here, there = PromptStore(db, clock=clock), PromptStore(db, ttl_seconds=2.0, clock=clock)
    elsewhere = PromptLibrary(folder, there)
    assert elsewhere.render("greet.j2", name="Bo", title="") == "Hello Bo"
    here.add("greet.j2", "Hi {{ name }}!", author="pm")
    assert elsewhere.render("greet.j2", name="Bo", title="") == "Hello Bo"  # cached a moment
    clock.now += 2.0
    assert elsewhere.render("greet.j2", name="Bo", title="") == "Hi Bo!"


def test_a_draft_is_rendered_only_by_the_library_that_holds_it(folder):
    library = PromptLibrary(folder)
    draft = library.with_draft("greet.j2", "Draft {{ name }}")
    assert draft.render("greet.j2", name="Cy", title="") == "Draft Cy"
    assert library.render("greet.j2", name="Cy", title="") == "Hello Cy"
    assert draft.source("greet.j2").origin == "draft"
    assert draft.version("greet.j2").startswith("draft:")


def test_validation_rejects_bad_syntax_unknown_and_dropped_variables(folder):
    library = PromptLibrary(folder)
    assert library.validate("greet.j2", "Hi {{ name }} {{ title }}") == {"name", "title"}
    with pytest.raises(PromptError, match="does not parse"):
        library.validate("greet.j2", "Hi {{ name ")
    with pytest.raises(PromptError, match="unknown variable.*secret"):
        library.validate("greet.j2", "Hi {{ name }}{{ title }}{{ secret }}")
    with pytest.raises(PromptError, match="drops required.*title"):
        library.validate("greet.j2", "Hi {{ name }}")
    # Variables set inside the template and Jinja's globals are not the caller's to pass.
    library.validate("greet.j2", "{% set x = range(2) %}{{ name }}{{ title }}{{ x }}")


def test_known_templates_have_their_variables_from_the_code():
    from backend.config import PROJECT_ROOT

    library = PromptLibrary(PROJECT_ROOT / "prompts")
    spec = library.variables("explain_user.j2")
    assert spec.allowed == {"user_name", "summary", "items", "request_facts"}
    assert spec.required == {"items"}
    with pytest.raises(PromptError, match="drops required.*items"):
        library.validate("explain_user.j2", "Hello {{ user_name }}")
    library.validate("explain_user.j2", "{% for i in items %}{{ i.name }}{% endfor %}")


def test_every_shipped_template_passes_its_own_validation():
    """The product team must be able to save a file's text back unchanged (loops that
    ``set`` names inside an ``if`` once made Jinja report those names as inputs)."""
    from backend.config import PROJECT_ROOT

    library = PromptLibrary(PROJECT_ROOT / "prompts")
    names = sorted(p.name for p in (PROJECT_ROOT / "prompts").glob("*.j2"))
    assert "explanation.j2" in names and "chat_reason.j2" in names
    for name in names:
        library.validate(name, library.file_source(name))
    with pytest.raises(PromptError, match="unknown variable.*secret"):
        library.validate("explanation.j2", library.file_source("explanation.j2") + "{{ secret }}")


def test_templates_are_sandboxed(folder):
    library = PromptLibrary(folder).with_draft(
        "greet.j2", "{{ name.__class__.__mro__[1].__subclasses__() }}"
    )
    with pytest.raises(PromptError):
        library.render("greet.j2", name="x", title="")


def test_an_unreadable_store_serves_the_files(tmp_path: Path, folder):
    empty = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # never migrated
    try:
        library = PromptLibrary(folder, PromptStore(empty))
        assert library.render("greet.j2", name="Di", title="") == "Hello Di"
    finally:
        empty.dispose()


def test_versions_are_numbered_per_template(db: Engine, folder):
    store = PromptStore(db)
    store.add("a.j2", "1", author="x")
    store.add("b.j2", "1", author="x")
    assert store.add("a.j2", "2", author="y").version == 2
    assert store.get("a.j2", 1) is not None and store.get("a.j2", 3) is None
    assert store.current("b.j2") is not None and store.current("b.j2").version == 1

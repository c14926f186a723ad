"""Prompt and text templates: Jinja2 files in ``prompts/``, the product team's to edit.

Rendering uses ``StrictUndefined`` so a template that names a variable we do not pass fails
loudly (in tests and at preview), never silently. Templates are looked up in order: a draft
being previewed, the newest version stored through the admin API (``PromptStore``), the file.
Jinja re-checks each source before use, so a stored version takes effect at once and a file
edit within a second (``file_check_seconds``), without a restart. The environment is
sandboxed: an edited template is data, not code.

Every render also has a budget (``RenderBudget``: time, loop iterations, output size), since
an editor's template can loop: ``range(3000)`` inside ``range(3000)`` would otherwise hold a
worker for seconds and larger ones for hours. The budget is checked by the rendering code
itself, so an exceeded budget stops the render where it is: no thread is left running it.
Time and iterations are counted where a template can repeat work: each item a ``for`` loop
draws (the compiled loop counts it), each call (a macro calling itself) and filter (``map``
applies one per item); sizes where a value can grow: the result of every operator, filter,
call and ``~``, and the output.
Straight-line code between two such points is as long as the template, so it needs no count.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment

_BLANK_RUNS = re.compile(r"\n{3,}")

Origin = Literal["file", "db", "draft"]


class PromptError(RuntimeError):
    """A template is missing, does not parse, or needs a variable that was not given."""


class TemplateBudgetExceeded(PromptError):
    """A render went over its time, loop or output budget (the message names which)."""


@dataclass(frozen=True, slots=True)
class RenderBudget:
    seconds: float = 2.0
    loop_iterations: int = 100_000  # items of every range() and loop, summed over the render
    output_chars: int = 200_000


class _Meter:
    """One render's spending; checked at every loop item, range, call and sized value.

    Time is the rendering thread's CPU time, not the wall clock: a template that computes
    too long is stopped just the same, but a busy machine (or a GC pause, or other threads
    holding the GIL) never fails an honest render, which would leave even the offline
    fallback explanation unwritten.

    Reading the thread's CPU clock is a system call, and one the kernel takes as a moment to
    reschedule: on a busy machine it stalled the request thread (py-spy: 9.5% of an uncached
    GET /recommend's server samples, 9% of the service call in process). A thread's CPU time
    never exceeds the wall time, so until half the budget has passed on the wall clock (read
    without a system call) the budget cannot be spent and the CPU clock is not read: an
    honest render, a fraction of a millisecond, never reads it. From then on the render may
    spend the other half in CPU time, read on every 16th tick: 15 more operations between two
    readings are each bounded by the other limits. In all, at most the budget in CPU time."""

    CLOCK_EVERY = 16

    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        self.half_time = time.perf_counter() + budget.seconds / 2
        self.deadline: float | None = None  # on the CPU clock, once half_time has passed
        self.iterations = 0
        self._ticks = 0

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % self.CLOCK_EVERY:
            return
        if self.deadline is None:
            if time.perf_counter() >= self.half_time:
                self.deadline = time.thread_time() + self.budget.seconds / 2
            return
        if time.thread_time() > self.deadline:
            raise TemplateBudgetExceeded(
                f"rendering took longer than {self.budget.seconds:g} s (the template's time limit)"
            )

    def spend(self, iterations: int) -> None:
        self.iterations += iterations
        if self.iterations > self.budget.loop_iterations:
            raise TemplateBudgetExceeded(
                f"more than {self.budget.loop_iterations} loop iterations in one render "
                "(the template's loop limit)"
            )
        self.tick()

    def size(self, length: int) -> None:
        if length > self.budget.output_chars:
            raise TemplateBudgetExceeded(
                f"output longer than {self.budget.output_chars} characters "
                "(the template's output limit)"
            )

    def loop(self, items: Iterable[Any]) -> Iterator[Any]:
        """A ``for`` loop's items, each counted as the loop draws it (a ``range()`` has
        counted its length already, so its items only tick the clock)."""
        if type(items) is range:
            for item in items:
                self.tick()
                yield item
        else:
            for item in items:
                self.spend(1)
                yield item


_meter: ContextVar[_Meter | None] = ContextVar("template_meter", default=None)


def _check() -> _Meter | None:
    meter = _meter.get()
    if meter is not None:
        meter.tick()
    return meter


def _budgeted_range(*args: int) -> range:
    items = range(*args)
    meter = _meter.get()
    if meter is not None:
        meter.spend(len(items))
    return items


def _too_big(meter: _Meter, *values: Any) -> None:
    """Refuse a size argument (a width, a repeat count) that alone exceeds the output cap."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            meter.size(abs(value))


_SIZED = (str, list, tuple)


def _guard_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, metered: a tick (``map`` and ``select`` call filters item by item, with
    no loop of the template's to count them), its size arguments and its result. Marked
    ``pass_context`` so Jinja never runs it at compile time (constant folding would compute
    ``'x'|center(10**9)`` before any budget applies).

    Jinja's filters that have an async variant check on every call which one to run; this
    environment is never async, so the plain one is called directly."""
    if getattr(func, "jinja_async_variant", False):
        func = getattr(func, "__wrapped__", func)
    mark = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    # One function per kind of first argument, picked here rather than on every call.
    if mark == "context":

        def call(context: Context, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return func(context, *args, **kwargs)

    elif mark == "eval_context":

        def call(context: Context, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return func(context.eval_ctx, *args, **kwargs)

    elif mark == "environment":

        def call(context: Context, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return func(context.environment, *args, **kwargs)

    else:

        def call(context: Context, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return func(*args, **kwargs)

    @pass_context
    @functools.wraps(func)
    def guarded(context: Context, *args: Any, **kwargs: Any) -> Any:
        meter = _meter.get()
        if meter is None:
            return call(context, args, kwargs)
        meter.tick()
        if len(args) > 1 or kwargs:
            _too_big(meter, *args[1:], *kwargs.values())
        result = call(context, args, kwargs)
        if isinstance(result, _SIZED):
            meter.size(len(result))
        return result

    return guarded


_LOOP_METER = "metered_loop"


class _MeteredCodeGenerator(CodeGenerator):
    """Jinja's compiler, with every loop's items counted and every ``~`` result sized.

    The count sits in the compiled code, so a loop whose body calls nothing (``{% set %}``
    only, or an ``if`` that filters every item out) is counted all the same."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Jinja allows no node types of our own: the iterable becomes a call of an
        # environment attribute, which no template can write (only extensions make them).
        metered = copy.copy(node)
        meter = nodes.EnvironmentAttribute(_LOOP_METER, lineno=node.iter.lineno)
        metered.iter = nodes.Call(meter, [node.iter], [], None, None, lineno=node.iter.lineno)
        super().visit_For(metered, frame)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        if isinstance(node.node, nodes.EnvironmentAttribute) and node.node.name == _LOOP_METER:
            self.write(f"environment.{_LOOP_METER}(")  # directly, not through sandbox.call
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # ``a ~ a`` doubles a string with no operator, call or loop involved.
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


_FORMATS = frozenset({"format", "format_map"})  # the methods Jinja's sandbox wraps

# Attribute names a dict has of its own (``items``, ``keys``...): ``item.name`` on one of
# these is still the sandbox's to resolve.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _BudgetedSandbox(SandboxedEnvironment):
    """The sandbox, with every operator routed through ``call_binop`` to be metered, and
    loops and ``~`` metered by the compiled code (``_MeteredCodeGenerator``)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})
    code_generator_class = _MeteredCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _budgeted_range
        self.filters = {name: _guard_filter(f) for name, f in self.filters.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``item.name`` on a plain dict (what the code passes): its key, as the sandbox
        finds it, without first failing to find a dict attribute of that name (an
        AttributeError raised and caught on every lookup: a quarter of the explanation's
        render time)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        meter = _check()
        if meter is not None:
            if operator == "*" and isinstance(left, str | list | tuple) and isinstance(right, int):
                meter.size(len(left) * right)
            elif (
                operator == "*" and isinstance(right, str | list | tuple) and isinstance(left, int)
            ):
                meter.size(len(right) * left)
            elif operator == "**" and isinstance(right, int | float) and abs(right) > 1000:
                raise TemplateBudgetExceeded("exponent above 1000 (the template's number limit)")
            result = super().call_binop(context, operator, left, right)
            if isinstance(result, str | list | tuple):
                meter.size(len(result))
            return result
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        meter = _check()
        if meter is not None:  # "x".ljust(10**9), lipsum(10**6) and the like
            _too_big(meter, *args, *kwargs.values())
            if type(__obj) is LoopContext and args:  # a recursive loop's next level
                args = (meter.loop(args[0]), *args[1:])
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def metered_loop(items: Any) -> Any:  # named by _LOOP_METER
        meter = _meter.get()
        return items if meter is None else meter.loop(items)

    @staticmethod
    def sized(value: str) -> str:
        meter = _meter.get()
        if meter is not None:
            meter.size(len(value))
        return value

    def wrap_str_format(self, value: Any) -> Any:
        """Asked by the sandbox of every call; only a ``str.format`` (or ``format_map``) is
        looked at, not every string method (the call itself has ticked already)."""
        if getattr(value, "__name__", None) in _FORMATS:
            text = getattr(value, "__self__", None)
            meter = _meter.get()
            if meter is not None and isinstance(text, str) and re.search(r"\d{7,}", text):
                meter.size(10**7)  # "{:>999999999}".format(...): refuse the width itself
        return super().wrap_str_format(value)


def render_within(template: Any, budget: RenderBudget, context: dict[str, Any]) -> str:
    """Render chunk by chunk, stopping as soon as the output is over its size. (A chunk
    needs no tick: many of them come from a loop, which ticks, or a call, which does too.)"""
    meter = _Meter(budget)
    token = _meter.set(meter)
    try:
        parts: list[str] = []
        length = 0
        limit = budget.output_chars
        chunks: Iterator[str] = template.generate(**context)
        for chunk in chunks:
            length += len(chunk)
            if length > limit:
                meter.size(length)
            parts.append(chunk)
        return "".join(parts)
    finally:
        _meter.reset(token)


class StoredVersion(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def source(self) -> str | None: ...


class PromptOverrides(Protocol):
    """Where runtime versions come from (``PromptStore``); None means "use the file"."""

    def override(self, name: str) -> StoredVersion | None: ...


@dataclass(frozen=True, slots=True)
class TemplateVariables:
    allowed: frozenset[str]  # what the code passes when it renders the template
    required: frozenset[str]  # what a new version may not drop


def _spec(passed: str, required: str = "") -> TemplateVariables:
    return TemplateVariables(frozenset(passed.split()), frozenset(required.split()))


# The variables each template is rendered with; a template not listed here may use exactly
# what its file version uses.
KNOWN_VARIABLES: dict[str, TemplateVariables] = {
    "explain_system.j2": _spec("max_words_per_reason item_count"),
    "explain_user.j2": _spec("user_name summary items request_facts", "items"),
    "explain_retry.j2": _spec("problems", "problems"),
    "llm_explanation.j2": _spec("user_name intro reasons", "reasons"),
    "explanation.j2": _spec("user_name summary items", "items"),
    "user_summary.j2": _spec("purchased viewed carted wishlisted categories searches"),
    # The shopping assistant (backend/chat).
    "chat_parse_system.j2": _spec("schema categories colours tags brands", "schema"),
    "chat_parse_user.j2": _spec("message shown_count", "message"),
    "chat_reason.j2": _spec("name category price in_stock evidence filters"),
    "chat_reply.j2": _spec(
        "user_name acknowledgement understood count candidates first_turn understood_nothing "
        "more notes"
    ),
    "chat_reply_system.j2": _spec("max_words_per_reason item_count"),
    "chat_reply_user.j2": _spec(
        "user_name summary items unwanted words first_turn more request_facts", "items"
    ),
    "chat_reply_llm.j2": _spec("acknowledgement intro notes"),
}


@dataclass(frozen=True, slots=True)
class PromptSource:
    name: str
    text: str
    origin: Origin
    version: int  # 0 for the file


class _Loader(BaseLoader):
    """Draft, then stored version, then file; each source says how to tell it went stale.

    A file's modification time is looked at most once per ``file_check_seconds``: Jinja asks
    before every render, and a ``stat`` per render was 2% of the storefront's CPU (the
    profile in ``bench/REPORT.md``). A stored version is still checked every time (its
    lookup is a dict read), so a save through the admin API is live at once."""

    def __init__(
        self,
        files: FileSystemLoader,
        store: PromptOverrides | None,
        drafts: Mapping[str, str],
        *,
        file_check_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.store = store
        self.drafts = dict(drafts)
        self.file_check_seconds = file_check_seconds
        self.monotonic = monotonic
        self._file_checked: dict[str, float] = {}  # template -> when its file was last fresh

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template in self.drafts:
            return self.drafts[template], None, lambda: True
        stored = self.store.override(template) if self.store else None
        if stored is not None and stored.source is not None:
            version = stored.version
            return stored.source, None, lambda: self._stored_version(template) == version
        text, filename, file_fresh = self.files.get_source(environment, template)
        self._file_checked[template] = self.monotonic()  # just read
        return (
            text,
            filename,
            lambda: self._stored_version(template) is None and self._fresh(template, file_fresh),
        )

    def _fresh(self, template: str, file_fresh: Callable[[], bool] | None) -> bool:
        if file_fresh is None:
            return True
        now = self.monotonic()
        checked = self._file_checked.get(template)
        if checked is not None and now - checked < self.file_check_seconds:
            return True
        if not file_fresh():
            return False
        self._file_checked[template] = now
        return True

    def _stored_version(self, name: str) -> int | None:
        stored = self.store.override(name) if self.store else None
        return stored.version if stored is not None else None


class PromptLibrary:
    def __init__(
        self,
        directory: Path,
        store: PromptOverrides | None = None,
        *,
        drafts: Mapping[str, str] | None = None,
        budget: RenderBudget | None = None,
        file_check_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``file_check_seconds``: an edited file is live within this many seconds."""
        self.directory = directory
        self.budget = budget or RenderBudget()
        self.store = store
        self._drafts = dict(drafts or {})
        self._file_check = (file_check_seconds, monotonic)
        self._loader = _Loader(
            FileSystemLoader(str(directory)),
            store,
            self._drafts,
            file_check_seconds=file_check_seconds,
            monotonic=monotonic,
        )
        self._env = _BudgetedSandbox(
            # No constant folding: it would run filters at compile time, outside the budget.
            optimized=False,
            loader=self._loader,
            undefined=StrictUndefined,
            autoescape=False,  # plain text for people and models, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )
        self._file_hashes: dict[str, tuple[int, str]] = {}

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.glob("*.j2"))

    def render(self, name: str, /, **context: Any) -> str:
        try:
            text = render_within(self._env.get_template(name), self.budget, context)
        except TemplateError as exc:
            raise PromptError(f"template {name!r}: {exc}") from exc
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # An edited template can compute things; its mistakes are prompt errors too.
            raise PromptError(f"template {name!r}: {type(exc).__name__}: {exc}") from exc
        except (RecursionError, MemoryError) as exc:  # a macro calling itself, a huge value
            raise TemplateBudgetExceeded(f"template {name!r}: {type(exc).__name__}") from exc
        return _BLANK_RUNS.sub("\n\n", text).strip()

    def with_draft(self, name: str, source: str) -> PromptLibrary:
        """A library that renders ``source`` for ``name`` (for previews; nothing is stored)."""
        seconds, monotonic = self._file_check
        return PromptLibrary(
            self.directory,
            self.store,
            drafts={**self._drafts, name: source},
            budget=self.budget,
            file_check_seconds=seconds,
            monotonic=monotonic,
        )

    # -- sources and versions --

    def file_source(self, name: str) -> str:
        path = self._path(name)
        return path.read_text(encoding="utf-8")

    def source(self, name: str) -> PromptSource:
        if name in self._drafts:
            return PromptSource(name, self._drafts[name], "draft", -1)
        stored = self.store.override(name) if self.store else None
        if stored is not None and stored.source is not None:
            return PromptSource(name, stored.source, "db", stored.version)
        return PromptSource(name, self.file_source(name), "file", 0)

    def version(self, name: str) -> str:
        """A short tag that changes whenever the text in effect for ``name`` changes."""
        if name in self._drafts:
            return "draft:" + hashlib.sha256(self._drafts[name].encode()).hexdigest()[:12]
        stored = self.store.override(name) if self.store else None
        if stored is not None and stored.source is not None:
            return f"db:{stored.version}"
        path = self._path(name)
        mtime = path.stat().st_mtime_ns
        cached = self._file_hashes.get(name)
        if cached is None or cached[0] != mtime:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            cached = (mtime, digest)
            self._file_hashes[name] = cached
        return f"file:{cached[1]}"

    # -- validation of a new version --

    def declared(self, source: str) -> frozenset[str]:
        """Variables a template reads from its context (Jinja globals excluded)."""
        return self._read(self._parse(source))

    def _parse(self, source: str) -> nodes.Template:
        try:
            return self._env.parse(source)
        except TemplateSyntaxError as exc:
            raise PromptError(f"does not parse: line {exc.lineno}: {exc.message}") from exc

    def _read(self, ast: nodes.Template) -> frozenset[str]:
        return frozenset(meta.find_undeclared_variables(ast) - set(self._env.globals))

    def variables(self, name: str) -> TemplateVariables:
        known = KNOWN_VARIABLES.get(name)
        if known is not None:
            return known
        used = self.declared(self.file_source(name))
        return TemplateVariables(allowed=used, required=used)

    def validate(self, name: str, source: str) -> frozenset[str]:
        """Reject a version that does not parse, reads an unknown variable or drops a required
        one; return the variables it uses."""
        spec = self.variables(name)
        ast = self._parse(source)
        used = self._read(ast)
        # Jinja counts a name set inside a loop or an ``if`` as read from the context too
        # (it may be unset there): a name the template assigns itself is its own.
        assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
        unknown = sorted(used - spec.allowed - assigned)
        if unknown:
            raise PromptError(
                f"uses unknown variable(s) {', '.join(unknown)}; "
                f"available: {', '.join(sorted(spec.allowed)) or 'none'}"
            )
        dropped = sorted(spec.required - used)
        if dropped:
            raise PromptError(f"drops required variable(s) {', '.join(dropped)}")
        return used

    def _path(self, name: str) -> Path:
        path = (self.directory / name).resolve()
        if path.parent != self.directory.resolve() or not path.is_file():
            raise PromptError(f"template {name!r} not found")
        return path

"""Presentation pieces of the console's prompt section: version tables, diffs, a draft's
problems on its lines, and what a preview's evidence check found. Pure functions from the API's
JSON; every value that came from the API is escaped before it becomes HTML."""

from __future__ import annotations

import difflib
from html import escape
from typing import Any

import pandas as pd

from chat_ui.admin_view import when


def prompts_table(prompts: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Template": p.get("name"),
                "In effect": "file" if p.get("origin") == "file" else f"v{p.get('version')}",
                "Author": p.get("author") or "",
                "Updated": when(p.get("updated_at")),
            }
            for p in prompts
        ]
    )


def versions_table(versions: list[dict[str, Any]], file_source: str | None = None) -> pd.DataFrame:
    """Who changed what, when and why; with the file's text, how many lines each one changed."""
    rows = []
    for i, v in enumerate(versions):
        row = {
            "Version": f"v{v.get('version')}",
            "In effect": "✓" if v.get("in_effect") else "",
            "Author": v.get("author", ""),
            "Created": when(v.get("created_at")),
            "Note": v.get("note") or ("reset to the file" if v.get("source") is None else ""),
        }
        if file_source is not None:
            before = versions[i + 1] if i + 1 < len(versions) else None
            row["Change"] = change_stat(
                version_text(before, file_source) if before else file_source,
                version_text(v, file_source),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def version_text(version: dict[str, Any], file_source: str) -> str:
    """The text a stored version put in effect (a reset puts the file back)."""
    source = version.get("source")
    return file_source if source is None else str(source)


def change_stat(old: str, new: str) -> str:
    added = removed = 0
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        added += line.startswith("+ ")
        removed += line.startswith("- ")
    return f"+{added} −{removed} lines" if added or removed else "no change"


def diff_text(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff (for ``st.code(..., language="diff")``); empty when the texts match."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm=""
    )
    return "\n".join(lines)


def annotated_source(source: str, problems: list[dict[str, Any]]) -> str:
    """The draft with line numbers; a line with a problem is red and its messages sit below."""
    by_line: dict[int, list[str]] = {}
    for p in problems:
        if p.get("line"):
            by_line.setdefault(int(p["line"]), []).append(str(p.get("message", "")))
    out = ['<div class="sw-src" data-testid="prompt-source">']
    lines = source.split("\n")
    for beyond in [n for n in by_line if n > len(lines)]:  # "unexpected end of template"
        by_line.setdefault(len(lines), []).extend(by_line.pop(beyond))
    for number, line in enumerate(lines, start=1):
        bad = number in by_line
        out.append(
            f'<div class="ln{" bad" if bad else ""}" data-line="{number}">'
            f'<span class="no">{number}</span><span>{escape(line) or "&nbsp;"}</span></div>'
        )
        for message in by_line.get(number, []):
            out.append(
                f'<div class="why" data-testid="problem-line-{number}">'
                f"line {number}: {escape(message)}</div>"
            )
    out.append("</div>")
    return "".join(out)


def problem_text(problem: dict[str, Any]) -> str:
    where = f"Line {problem['line']}" if problem.get("line") else "Whole template"
    return f"{where}: {problem.get('message', '')}"


def variables_html(detail: dict[str, Any], used: list[str] | None = None) -> str:
    """The variables the code passes to this template; required ones marked, unused greyed."""
    allowed = detail.get("variables_allowed") or []
    required = set(detail.get("variables_required") or [])
    in_use = set(detail.get("variables_used") or [] if used is None else used)
    if not allowed:
        return '<div class="sw-vars">This template is rendered with no variables.</div>'
    items = "".join(
        f'<li class="{"" if v in in_use else "unused"}"><code>{escape(v)}</code>'
        + ('<span class="req">required</span>' if v in required else "")
        + "</li>"
        for v in allowed
    )
    return (
        '<div class="sw-vars" data-testid="prompt-variables"><b>Variables you can use</b>'
        f'<ul style="margin:.3rem 0 .2rem 1rem; padding:0">{items}</ul>'
        '<span class="sw-muted">Grey: not used by this draft. Anything else is refused.</span>'
        "</div>"
    )


# Which rendered part of a preview sample shows a template's own output.
PREVIEW_PART = {
    "explanation.j2": "template_explanation",
    "explain_system.j2": "system",
    "explain_user.j2": "user",
    "user_summary.j2": "summary",
}


def check_badge(sample: dict[str, Any]) -> str:
    """Whether this shopper's LLM answer passed the evidence check (first try, then final)."""
    first = sample.get("first_check_passed")
    if first is None:
        if sample.get("fallback_reason"):  # no answer to check (the model timed out, ...)
            reason = escape(str(sample["fallback_reason"]).replace("_", " "))
            return f'<span class="sw-badge fail">no answer: {reason}</span>'
        return '<span class="sw-badge none">not checked</span>'
    if sample.get("explanation_source") == "llm":
        text = "passed" if first else "passed on retry"
        return f'<span class="sw-badge pass">{text}</span>'
    return '<span class="sw-badge fail">failed: template fallback</span>'


def claim_failures(sample: dict[str, Any]) -> list[str]:
    """Every failure detail a preview sample carries, whichever shape the API sent: per-claim
    records (``claims``/``failed_claims``/``failures``, dicts or strings) or the older
    ``check_reasons`` and ``fallback_reason``."""
    out: list[str] = []
    keys = [k for k in sample if "claim" in k or k in ("failures", "check_failures")]
    for key in keys:
        items = sample.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                if item.get("ok") is True or item.get("passed") is True:
                    continue
                claim = item.get("claim") or item.get("text") or item.get("sentence") or ""
                claim = claim or item.get("span") or ""  # the API's name: the words quoted
                why = item.get("reason") or item.get("why") or item.get("detail") or ""
                code = item.get("code") or item.get("kind") or ""
                why = f"{why} ({code})" if why and item.get("code") else why or code
                product = item.get("product") or item.get("product_name") or ""
                head = f"{product}: " if product else ""
                if item.get("attempt") == 2:
                    head = f"retry · {head}"
                out.append(f"{head}“{claim}” — {why}" if claim else f"{head}{why}")
            else:
                out.append(str(item))
    if not out:
        out = [str(r).replace("_", " ") for r in sample.get("check_reasons") or []]
    return [o for o in out if o.strip()]


def checked_share(result: dict[str, Any]) -> str:
    """What a preview's pass rate is out of: only the samples the model answered are judged
    (one that ran out of time has no answer to check), which may be fewer than were asked."""
    samples = result.get("samples") or []
    judged = sum(1 for s in samples if s.get("first_check_passed") is not None)
    return f"final answer is the LLM's · {judged} of {len(samples)} answered"


def fallback_text(sample: dict[str, Any]) -> str:
    """What the shopper would get instead of the LLM's answer, and why ('' when it is the
    LLM's)."""
    if sample.get("explanation_source") in (None, "llm"):
        return ""
    reason = str(sample.get("fallback_reason") or "unknown").replace("_", " ")
    return f"Shown instead: the template ({reason})"

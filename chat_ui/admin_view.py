"""Presentation pieces of the operator console: styles, small HTML blocks, tables and charts.

Pure functions from the API's JSON to HTML strings, pandas frames and Altair charts, so the page
stays a list of sections. Every value that came from the API is escaped before it becomes HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any

import altair as alt
import pandas as pd

from chat_ui.components import LOGO

TEAL, SLATE, AMBER, RED, GREEN = "#0f766e", "#334155", "#b45309", "#b91c1c", "#15803d"

CSS = """
<style>
.block-container {padding-top: 1.4rem; max-width: 1280px;}
.sw-top {display:flex; align-items:center; gap:.75rem; margin-bottom:.25rem;}
.sw-top h1 {font-size:1.45rem; margin:0; padding:0; color:#0f172a;}
.sw-top .sw-tag {font-size:.72rem; letter-spacing:.08em; text-transform:uppercase;
  color:#0f766e; background:#ccfbf1; border-radius:999px; padding:.12rem .55rem;}
.sw-who {text-align:right; color:#475569; font-size:.85rem; padding-top:.35rem;}
.sw-who b {color:#0f172a;}
.sw-kpi {border:1px solid #e2e8f0; border-radius:12px; padding:.7rem .9rem; background:#fff;
  box-shadow:0 1px 2px rgba(15,23,42,.05);}
.sw-kpi .l {font-size:.72rem; letter-spacing:.06em; text-transform:uppercase; color:#64748b;}
.sw-kpi .v {font-size:1.55rem; font-weight:700; color:#0f172a; line-height:1.2;}
.sw-kpi .s {font-size:.78rem; color:#64748b;}
.sw-health {border:1px solid #e2e8f0; border-radius:12px; padding:.6rem .8rem; background:#fff;
  margin-bottom:.6rem; min-height:5.2rem;}
.sw-health .n {font-weight:600; color:#0f172a;}
.sw-health .d {font-size:.78rem; color:#475569; margin-top:.2rem; word-break:break-word;}
.sw-dot {display:inline-block; width:.6rem; height:.6rem; border-radius:50%;
  margin-right:.4rem; vertical-align:middle;}
.sw-pill {font-size:.72rem; font-weight:600; border-radius:999px; padding:.1rem .55rem;}
.sw-pill.ok {background:#dcfce7; color:#166534;}
.sw-pill.degraded {background:#fef3c7; color:#92400e;}
.sw-pill.down {background:#fee2e2; color:#991b1b;}
.sw-pill.running {background:#dbeafe; color:#1e40af;}
.sw-pill.stopped {background:#f1f5f9; color:#334155;}
.sw-pill.promoted {background:#ccfbf1; color:#115e59;}
.sw-verdict {border-left:4px solid #0f766e; background:#f0fdfa; border-radius:8px;
  padding:.6rem .9rem; margin:.4rem 0 .8rem 0; color:#134e4a;}
.sw-verdict.unsure {border-left-color:#b45309; background:#fffbeb; color:#78350f;}
.sw-login {max-width:420px; margin:3.5rem auto 0 auto;}
.sw-login p {color:#64748b;}
.sw-muted {color:#64748b; font-size:.85rem;}
.sw-src {font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.8rem;
  border:1px solid #e2e8f0; border-radius:8px; background:#f8fafc; padding:.3rem 0;
  max-height:420px; overflow:auto; white-space:pre-wrap; word-break:break-word;}
.sw-src .ln {display:flex; padding:0 .6rem;}
.sw-src .no {color:#94a3b8; min-width:2.6rem; user-select:none;}
.sw-src .ln.bad {background:#fee2e2;}
.sw-src .ln.bad .no {color:#b91c1c; font-weight:700;}
.sw-src .why {color:#991b1b; background:#fef2f2; padding:.1rem .6rem .2rem 3.2rem;
  font-family:inherit; border-bottom:1px solid #fecaca;}
.sw-vars {border:1px solid #e2e8f0; border-radius:10px; padding:.5rem .8rem; background:#fff;
  font-size:.85rem;}
.sw-vars code {font-size:.8rem;}
.sw-vars .req {font-size:.7rem; color:#0f766e; margin-left:.3rem;}
.sw-vars .unused, .sw-vars .unused code {color:#94a3b8;}
div[class*="st-key-draft-"] textarea {font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
  font-size:.8rem; line-height:1.45;}
.sw-badge {font-size:.72rem; font-weight:600; border-radius:999px; padding:.1rem .55rem;}
.sw-badge.pass {background:#dcfce7; color:#166534;}
.sw-badge.fail {background:#fee2e2; color:#991b1b;}
.sw-badge.none {background:#f1f5f9; color:#334155;}
</style>
"""

STATUS_COLOURS = {"ok": GREEN, "degraded": AMBER, "down": RED}


def header(title: str = "Operator console") -> str:
    return (
        f'<div class="sw-top">{LOGO}<h1>Shopwise · {escape(title)}</h1>'
        '<span class="sw-tag">admin</span></div>'
    )


def who(username: str, role: str) -> str:
    return f'<div class="sw-who">Signed in as <b>{escape(username)}</b> · {escape(role)}</div>'


def login_intro() -> str:
    return (
        f'<div class="sw-top">{LOGO}<h1>Shopwise operator console</h1></div>'
        "<p>Sign in with an admin or editor account to see the catalog, experiments, "
        "analytics, prompts and evaluation reports.</p>"
    )


def kpi(label: str, value: Any, sub: str = "") -> str:
    return (
        f'<div class="sw-kpi"><div class="l">{escape(label)}</div>'
        f'<div class="v">{escape(str(value))}</div><div class="s">{escape(sub)}&nbsp;</div></div>'
    )


def pill(status: str) -> str:
    s = escape(str(status))
    return f'<span class="sw-pill {s}">{s}</span>'


COMPONENT_NAMES = {"llm": "LLM", "index": "Engine index", "events": "Event stream"}


def health_card(name: str, component: dict[str, Any]) -> str:
    status = str(component.get("status", "down"))
    name = COMPONENT_NAMES.get(name, name.replace("_", " ").capitalize())
    colour = STATUS_COLOURS.get(status, RED)
    return (
        '<div class="sw-health" data-testid="health-card">'
        f'<div><span class="sw-dot" style="background:{colour}"></span>'
        f'<span class="n">{escape(name)}</span> {pill(status)}</div>'
        f'<div class="d">{escape(str(component.get("detail", "")))}</div></div>'
    )


def number(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "–"


def percent(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return "–"


# --- experiments ---------------------------------------------------------------------------


def experiments_table(experiments: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for e in experiments:
        variants = e.get("variants") or []
        rows.append(
            {
                "Name": e.get("name", ""),
                "Status": e.get("status", ""),
                "Variants": ", ".join(
                    f"{v.get('name')} ({float(v.get('share', 0)) * 100:.0f}%)" for v in variants
                ),
                "Winner": e.get("winner") or "",
                "Window (h)": e.get("attribution_window_hours"),
                "Created": when(e.get("created_at")),
            }
        )
    return pd.DataFrame(rows)


def variant_table(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for v in report.get("variants", []):
        rows.append(
            {
                "Variant": v.get("variant"),
                "Users": v.get("users", 0),
                "Impressions": v.get("impressions", 0),
                "Clicks": v.get("clicks", 0),
                "Add to cart": v.get("add_to_carts", 0),
                "Purchases": v.get("purchases", 0),
                "CTR": percent(v.get("ctr"), 2),
                "CTR 95% CI": _interval(v.get("ctr_ci")),
                "Conversion": percent(v.get("conversion"), 2),
                "Conversion 95% CI": _interval(v.get("conversion_ci")),
            }
        )
    return pd.DataFrame(rows)


def verdict(report: dict[str, Any]) -> tuple[str, bool]:
    """One sentence on the best variant, and whether the report is confident about it."""
    best = report.get("best_variant")
    level = float(report.get("confidence_level") or 0.95)
    p = report.get("p_value")
    p_text = f"p = {float(p):.3g}" if p is not None else "no test yet"
    if not best:
        return "Not enough traffic yet to compare the variants.", False
    if report.get("confident"):
        return (
            f"Variant “{best}” is best, confident at the {level:.0%} level ({p_text}).",
            True,
        )
    return (
        f"Variant “{best}” leads so far, but not at the {level:.0%} level ({p_text}); "
        "keep the experiment running.",
        False,
    )


def verdict_html(report: dict[str, Any]) -> str:
    text, sure = verdict(report)
    return f'<div class="sw-verdict{"" if sure else " unsure"}">{escape(text)}</div>'


def interval_chart(report: dict[str, Any], metric: str, title: str) -> alt.LayerChart:
    """Point estimate and 95% interval per variant (error bars; the best variant in teal)."""
    rows = []
    for v in report.get("variants", []):
        lo, hi = (v.get(f"{metric}_ci") or [None, None])[:2]
        value = float(v.get(metric) or 0.0)
        rows.append(
            {
                "variant": str(v.get("variant")),
                "value": value,
                "lo": float(lo) if lo is not None else value,
                "hi": float(hi) if hi is not None else value,
                "best": str(v.get("variant")) == report.get("best_variant"),
            }
        )
    data = pd.DataFrame(rows or [{"variant": "", "value": 0.0, "lo": 0.0, "hi": 0.0, "best": 0}])
    x = alt.X("variant:N", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelFontSize=12))
    colour = alt.condition("datum.best", alt.value(TEAL), alt.value(SLATE))
    base = alt.Chart(data)
    bar = base.mark_rule(strokeWidth=2).encode(
        x=x, y=alt.Y("lo:Q", title=None, axis=alt.Axis(format="%")), y2="hi:Q", color=colour
    )
    low = base.mark_tick(thickness=2, size=18).encode(x=x, y="lo:Q", color=colour)
    high = base.mark_tick(thickness=2, size=18).encode(x=x, y="hi:Q", color=colour)
    point = base.mark_circle(size=140, opacity=1).encode(
        x=x,
        y="value:Q",
        color=colour,
        tooltip=[
            alt.Tooltip("variant:N"),
            alt.Tooltip("value:Q", format=".2%", title=title),
            alt.Tooltip("lo:Q", format=".2%", title="95% low"),
            alt.Tooltip("hi:Q", format=".2%", title="95% high"),
        ],
    )
    layered: alt.LayerChart = (bar + low + high + point).properties(
        title=alt.Title(title, subtitle="point estimate and 95% interval"), height=240
    )
    return layered


# --- analytics -----------------------------------------------------------------------------


def daily_frame(summary: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(summary.get("daily") or [])
    if frame.empty:
        return frame
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def line_chart(
    frame: pd.DataFrame, field: str, title: str, colour: str = TEAL, *, share: bool = False
) -> alt.Chart:
    """A daily rate; ``share``: a 0–100% scale (for shares that are often all 0 or all 1)."""
    values = frame[field].dropna() if field in frame else pd.Series(dtype=float)
    top = 1.0 if share or values.empty else max(0.05, float(values.max()) * 1.25)
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_line(color=colour, point=alt.OverlayMarkDef(color=colour, size=45))
        .encode(
            x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d", tickCount="day")),
            y=alt.Y(
                f"{field}:Q",
                title=None,
                axis=alt.Axis(format=".0%", tickCount=5),
                scale=alt.Scale(domain=[0, top]),
            ),
            tooltip=[
                alt.Tooltip("date:T", format="%Y-%m-%d"),
                alt.Tooltip(f"{field}:Q", format=".1%", title=title),
            ],
        )
        .properties(
            title=alt.Title(title, anchor="start", offset=10),
            height=200,
            padding={"left": 6, "right": 6, "top": 4, "bottom": 4},
            autosize=alt.AutoSizeParams(type="fit", contains="padding"),
        )
    )
    return chart


def strategy_chart(summary: dict[str, Any]) -> alt.Chart:
    rows = []
    for s in summary.get("by_strategy") or []:
        rows.append({"strategy": s.get("strategy"), "metric": "CTR", "value": s.get("ctr") or 0})
        rows.append(
            {
                "strategy": s.get("strategy"),
                "metric": "Conversion",
                "value": s.get("conversion_rate") or 0,
            }
        )
    chart: alt.Chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("strategy:N", title=None, axis=alt.Axis(labelAngle=0, labelFontSize=12)),
            xOffset="metric:N",
            y=alt.Y("value:Q", title=None, axis=alt.Axis(format=".0%", tickCount=5)),
            color=alt.Color(
                "metric:N",
                scale=alt.Scale(domain=["CTR", "Conversion"], range=[TEAL, "#94a3b8"]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=["strategy:N", "metric:N", alt.Tooltip("value:Q", format=".2%")],
        )
        .properties(title="CTR and conversion by strategy", height=260)
    )
    return chart


def strategy_table(summary: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Strategy": s.get("strategy"),
                "Impressions": s.get("impressions", 0),
                "Clicks": s.get("clicks", 0),
                "CTR": percent(s.get("ctr"), 2),
                "Conversions": s.get("conversions", 0),
                "Conversion": percent(s.get("conversion_rate"), 2),
            }
            for s in summary.get("by_strategy") or []
        ]
    )


def source_table(summary: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Explanation source": s.get("source"),
                "Impressions": s.get("impressions", 0),
                "Clicks": s.get("clicks", 0),
                "CTR": percent(s.get("ctr"), 2),
            }
            for s in summary.get("by_explanation_source") or []
        ]
    )


# --- segments, prompts, evaluation ----------------------------------------------------------


def segments_table(segments: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Segment": s.get("segment"),
                "Label": s.get("label", ""),
                "Shoppers": s.get("size", 0),
                "Top categories": ", ".join(s.get("top_categories") or []),
                "Average price": f"${float(s.get('avg_price') or 0):,.2f}",
            }
            for s in segments.get("items") or []
        ]
    )


def segments_chart(segments: dict[str, Any]) -> alt.Chart:
    data = pd.DataFrame(
        [
            {
                "label": str(s.get("label") or f"segment {s.get('segment')}"),
                "size": s.get("size", 0),
            }
            for s in segments.get("items") or []
        ]
    )
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar(color=TEAL, cornerRadiusEnd=4)
        .encode(
            x=alt.X("size:Q", title="shoppers"),
            y=alt.Y("label:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260)),
            tooltip=["label:N", "size:Q"],
        )
        .properties(height=max(120, 34 * len(data)))
    )
    return chart


def evaluation_chart(report: dict[str, Any]) -> alt.Chart:
    data = pd.DataFrame(
        [
            {
                "strategy": r.get("strategy"),
                "kind": "ours" if r.get("kind") == "ours" else "baseline",
                "ndcg": r.get("test_ndcg10", 0.0),
            }
            for r in report.get("rows") or []
        ]
    )
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=4)
        .encode(
            x=alt.X("ndcg:Q", title="test NDCG@10"),
            y=alt.Y("strategy:N", title=None, sort="-x"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["ours", "baseline"], range=[TEAL, "#94a3b8"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["strategy:N", "kind:N", alt.Tooltip("ndcg:Q", format=".4f")],
        )
        .properties(height=alt.Step(26))
    )
    return chart


def evaluation_table(report: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Strategy": r.get("strategy"),
                "Kind": r.get("kind"),
                "Test HR@10": r.get("test_hr10"),
                "Test NDCG@10": r.get("test_ndcg10"),
                "Test R@20": r.get("test_recall20"),
                "Coverage": r.get("coverage"),
                "Diversity": r.get("diversity"),
                "Chosen on validation": r.get("params"),
            }
            for r in report.get("rows") or []
        ]
    )


def _interval(ci: Any) -> str:
    if not ci or len(ci) < 2 or ci[0] is None or ci[1] is None:
        return "–"
    return f"{percent(ci[0], 2)} – {percent(ci[1], 2)}"


def when(value: Any) -> str:
    return str(value)[:16].replace("T", " ") if value else ""

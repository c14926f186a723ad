"""Presentation pieces of the chat page: styles and product-card HTML.

Every value that came from the API or the shopper is escaped here before it becomes HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any

CSS = """
<style>
.block-container {padding-top: 1.6rem; max-width: 1180px;}
.sw-hero {display:flex; align-items:center; gap:.8rem; margin-bottom:.2rem;}
.sw-hero h1 {font-size:1.7rem; margin:0; padding:0;}
.sw-sub {color:#64748b; margin:0 0 .8rem 0;}
.sw-card {border:1px solid #e2e8f0; border-radius:16px; overflow:hidden; background:#fff;
  box-shadow:0 1px 3px rgba(15,23,42,.06); height:100%;}
.sw-card img {width:100%; height:170px; object-fit:contain; background:#f8fafc; display:block;
  padding:.5rem 0;}
.sw-card .sw-body {padding:.6rem .8rem .7rem .8rem;}
.sw-cat {font-size:.72rem; letter-spacing:.06em; text-transform:uppercase; color:#64748b;}
.sw-name {font-weight:600; color:#0f172a; line-height:1.25; margin:.15rem 0 .3rem 0;
  min-height:2.5em;}
.sw-price {font-size:1.15rem; font-weight:700; color:#0f172a;}
.sw-stock {font-size:.72rem; font-weight:600; border-radius:999px; padding:.1rem .5rem;
  margin-left:.4rem; vertical-align:middle;}
.sw-stock.in {background:#dcfce7; color:#166534;}
.sw-stock.low {background:#fef3c7; color:#92400e;}
.sw-stock.out {background:#fee2e2; color:#991b1b;}
.sw-reason {font-size:.82rem; color:#334155; margin-top:.35rem; line-height:1.35;}
.sw-foryou {border:1px solid #e2e8f0; border-radius:14px; padding:.7rem .8rem; background:#f8fafc;
  font-size:.88rem;}
.sw-mini {display:flex; gap:.5rem; align-items:center; margin:.35rem 0;}
.sw-mini img {width:42px; height:42px; border-radius:8px;}
.sw-mini .n {font-size:.82rem; font-weight:600; color:#0f172a; line-height:1.2;}
.sw-mini .p {font-size:.78rem; color:#475569;}
.sw-label {font-size:.78rem; color:#64748b; margin:.4rem 0 .2rem 0;}
div[data-testid="stButton"] button {border-radius:999px;}
</style>
"""


LOGO = (
    '<svg width="40" height="40" viewBox="0 0 40 40" aria-hidden="true">'
    '<rect width="40" height="40" rx="10" fill="#0f766e"/>'
    '<path d="M12 15h16l-1.5 15h-13z" fill="none" stroke="#fff" stroke-width="2.2" '
    'stroke-linejoin="round"/><path d="M16 15a4 4 0 0 1 8 0" fill="none" stroke="#fff" '
    'stroke-width="2.2"/></svg>'
)


def money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return ""


def stock_badge(product: dict[str, Any]) -> str:
    quantity = int(product.get("quantity") or 0)
    if not product.get("in_stock") or quantity <= 0:
        return '<span class="sw-stock out">Out of stock</span>'
    if quantity <= 5:
        return f'<span class="sw-stock low">Only {quantity} left</span>'
    return '<span class="sw-stock in">In stock</span>'


def product_card(product: dict[str, Any], image_url: str) -> str:
    return (
        '<div class="sw-card" data-testid="product-card">'
        f'<img src="{escape(image_url, quote=True)}" alt="{escape(product.get("name", ""))}">'
        '<div class="sw-body">'
        f'<div class="sw-cat">{escape(str(product.get("category", "")))}</div>'
        f'<div class="sw-name">{escape(str(product.get("name", "")))}</div>'
        f'<div class="sw-price">{money(product.get("price"))}{stock_badge(product)}</div>'
        f'<div class="sw-reason">{escape(str(product.get("reason", "")))}</div>'
        "</div></div>"
    )


def mini_product(product: dict[str, Any], image_url: str) -> str:
    return (
        '<div class="sw-mini">'
        f'<img src="{escape(image_url, quote=True)}" alt="">'
        f'<div><div class="n">{escape(str(product.get("name", "")))}</div>'
        f'<div class="p">{money(product.get("price"))} · '
        f"{escape(str(product.get('category', '')))}</div></div></div>"
    )


def hero() -> str:
    return (
        f'<div class="sw-hero">{LOGO}<h1>Shopwise assistant</h1></div>'
        '<p class="sw-sub">Tell me what you are looking for, and refine as we go: '
        "“wireless earbuds under $80”, “not black”, “cheaper”, “more like the second one”.</p>"
    )


def plain(text: str) -> str:
    """Reply text for ``st.markdown``: escape markup so nothing the shopper typed renders."""
    out = escape(text, quote=False)
    for ch in "\\`*_[]#<>|~":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", "  \n")

"""Placeholder product images drawn on the fly, so the demo catalog shows pictures offline."""

from __future__ import annotations

import hashlib
import textwrap
import uuid
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, Path, Response

from backend.api.deps import SessionDep
from backend.db import crud
from backend.errors import NotFoundError

router = APIRouter(tags=["catalog"])

PALETTE = [
    ("#1f6feb", "#dbeafe"), ("#b45309", "#fef3c7"), ("#047857", "#d1fae5"),
    ("#7c3aed", "#ede9fe"), ("#be123c", "#ffe4e6"), ("#0e7490", "#cffafe"),
    ("#4d7c0f", "#ecfccb"), ("#c2410c", "#ffedd5"), ("#334155", "#e2e8f0"),
    ("#a21caf", "#fae8ff"), ("#15803d", "#dcfce7"), ("#1d4ed8", "#e0e7ff"),
]  # fmt: skip


def product_svg(name: str, category: str) -> str:
    digest = hashlib.sha256(category.encode()).digest()
    ink, paper = PALETTE[digest[0] % len(PALETTE)]
    initials = "".join(w[0] for w in name.split()[:2] if w[:1].isalnum()).upper() or "?"
    lines = textwrap.wrap(name, 22)[:3]
    text = "".join(
        f'<text x="160" y="{228 + 22 * i}" font-size="18" text-anchor="middle" '
        f'fill="{ink}">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320"'
        ' font-family="Helvetica, Arial, sans-serif">'
        f'<rect width="320" height="320" rx="24" fill="{paper}"/>'
        f'<circle cx="160" cy="120" r="70" fill="{ink}"/>'
        f'<text x="160" y="138" font-size="52" font-weight="bold" text-anchor="middle" '
        f'fill="{paper}">{escape(initials)}</text>{text}'
        f'<text x="160" y="300" font-size="13" text-anchor="middle" fill="{ink}" '
        f'opacity="0.75">{escape(category.upper())}</text></svg>'
    )


@router.get(
    "/images/products/{product_id}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, 404: {"description": "No such product"}},
    summary="A placeholder picture of a product",
)
def product_image(session: SessionDep, product_id: Annotated[uuid.UUID, Path()]) -> Response:
    viewed = crud.get_product(session=session, product_id=product_id)
    if viewed is None:
        raise NotFoundError("product", product_id)
    return Response(
        content=product_svg(viewed.product.name, viewed.product.category),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )

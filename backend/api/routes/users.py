from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from backend.api.deps import LocationDep, PrivacyDep, SessionDep
from backend.api.schemas import CartLine, Page, ProductBrief, UserDetail, UserOut
from backend.db import crud
from backend.db.models import Action
from backend.errors import NotFoundError
from backend.security.text import SafeText
from backend.services.location import LocationIn
from backend.services.privacy import UserExport

router = APIRouter(prefix="/users", tags=["users"])

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1–100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]


@router.get("", response_model=Page[UserOut], summary="List users (no password hashes)")
def list_users(
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    q: Annotated[SafeText | None, Query(min_length=1, max_length=100)] = None,
) -> Page[UserOut]:
    page = crud.list_users(session=session, limit=limit, offset=offset, q=q)
    return Page[UserOut](
        items=[UserOut.model_validate(u) for u in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{user_id}",
    response_model=UserDetail,
    summary="One user with searches, purchases, views, cart and wishlist",
    responses={404: {"description": "No such user"}},
)
def get_user(session: SessionDep, user_id: Annotated[uuid.UUID, Path()]) -> UserDetail:
    user = crud.get_user(session=session, user_id=user_id)
    if user is None:
        raise NotFoundError("user", user_id)

    def briefs(action: Action) -> list[ProductBrief]:
        products = crud.products_by_action(session=session, user_id=user_id, action=action)
        return [ProductBrief.model_validate(p) for p in products]

    return UserDetail(
        **UserOut.model_validate(user).model_dump(),
        recent_searches=crud.search_history(session=session, user_id=user_id),
        purchases=briefs(Action.PURCHASE),
        recently_viewed=briefs(Action.VIEW),
        cart=[
            CartLine(**ProductBrief.model_validate(p).model_dump(), cart_quantity=q)
            for p, q in crud.cart(session=session, user_id=user_id)
        ],
        wishlist=[
            ProductBrief.model_validate(p) for p in crud.wishlist(session=session, user_id=user_id)
        ],
    )


@router.get(
    "/{user_id}/export",
    response_model=UserExport,
    summary="Everything stored about a user (GDPR access request)",
    responses={404: {"description": "No such user"}},
)
def export_user(privacy: PrivacyDep, user_id: Annotated[uuid.UUID, Path()]) -> UserExport:
    return privacy.export(user_id)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a user with their interactions, cart, wishlist and profile (GDPR erasure)",
    responses={404: {"description": "No such user"}},
)
def erase_user(privacy: PrivacyDep, user_id: Annotated[uuid.UUID, Path()]) -> None:
    privacy.erase(user_id)


@router.put(
    "/{user_id}/location",
    response_model=UserOut,
    summary="Set (or clear, with nulls) the shopper's position for the location boost",
    responses={404: {"description": "No such user"}},
)
def set_location(
    location: LocationDep, user_id: Annotated[uuid.UUID, Path()], body: LocationIn
) -> UserOut:
    return UserOut.model_validate(location.set_user_location(user_id, body))

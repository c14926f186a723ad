"""The attacks found from outside, performed against the app with authentication on.

Each test carries out one attack as an outsider would and asserts it no longer works:
minting shopper tokens with an unrelated key, tokens that outlive their key or cannot be
revoked, someone else's chat session, someone else's event id, personal data through a
recommendations key.
"""

from __future__ import annotations

import uuid

import jwt
import pytest
from sqlmodel import Session, select

from backend.db.engine import session_scope
from backend.db.models import AdminUser, Interaction, User
from tests.security.conftest import SECRET, Secured, bearer

OLD_SCOPES = ("recommendations:read", "events:write", "catalog:write", "users:read", "metrics:read")


def _exists(s: Secured, user: str) -> bool:
    with Session(s.components.db) as session:
        return session.get(User, s.shop.users[user].id) is not None


# --- minting shopper tokens needs a scope that acts for shoppers ---------------------------


@pytest.mark.parametrize("scopes", [(scope,) for scope in OLD_SCOPES] + [OLD_SCOPES])
def test_a_key_without_shoppers_act_cannot_mint_and_erase_a_shopper(secured, scopes):
    s = secured
    key = s.key(*scopes)
    r = s.client.post("/auth/shopper-session", json={"user_id": s.uid("alice")}, headers=key)
    assert r.status_code == 403, r.text
    guest = s.client.post("/auth/shopper-session", json={}, headers=key)
    assert guest.status_code == 403
    # Nor through the key itself (it may hold users:read, never erasure).
    assert s.client.delete(f"/users/{s.uid('alice')}", headers=key).status_code == 403
    assert _exists(s, "alice")


def test_staff_other_than_admins_cannot_mint(secured):
    s = secured
    r = s.client.post(
        "/auth/shopper-session", json={"user_id": s.uid("alice")}, headers=s.login("eddie")
    )
    assert r.status_code == 403


def test_a_minted_token_never_does_more_than_its_key(secured):
    s = secured
    alice = s.uid("alice")
    token, _ = s.mint(s.key("shoppers:act", "recommendations:read"), "alice")
    assert s.client.get(f"/recommend/{alice}", headers=token).status_code == 200
    assert s.client.delete(f"/users/{alice}", headers=token).status_code == 403
    assert s.client.get(f"/users/{alice}/export", headers=token).status_code == 403
    assert s.client.get(f"/users/{alice}", headers=token).status_code == 403
    lamp = str(s.shop.products["Desk Lamp"].id)
    event = {"user_id": alice, "action": "view", "product_id": lamp}
    assert s.client.post("/events", json=event, headers=token).status_code == 403
    # A token cannot mint tokens, whatever its key could do.
    assert s.client.post("/auth/shopper-session", json={}, headers=token).status_code == 403
    assert _exists(s, "alice")


def test_a_shopper_erases_only_themselves_when_their_key_allows_erasure(secured):
    s = secured
    token, _ = s.mint(s.key("shoppers:act", "users:erase"), "alice")
    assert s.client.delete(f"/users/{s.uid('bob')}", headers=token).status_code == 403
    assert _exists(s, "bob")
    assert s.client.delete(f"/users/{s.uid('alice')}", headers=token).status_code == 204
    assert not _exists(s, "alice")
    # The shopper is gone, and so are their sessions.
    assert s.client.get(f"/users/{s.uid('alice')}", headers=token).status_code == 401


# --- tokens die with their key and can be revoked ------------------------------------------


def test_a_shopper_token_dies_with_the_key_that_minted_it(secured):
    s = secured
    created = s.components.auth.create_key("shop", ["shoppers:act", "users:read"])
    token, _ = s.mint({"X-API-Key": created.api_key}, "alice")
    export = f"/users/{s.uid('alice')}/export"
    r = s.client.get(export, headers=token)
    assert r.status_code == 200
    # The export names her sessions and the key behind each, never a token itself.
    assert [t["api_key_id"] for t in r.json()["sessions"]] == [str(created.id)]
    assert token["Authorization"][7:] not in r.text
    admin = s.login("ada")
    assert s.client.delete(f"/admin/api-keys/{created.id}", headers=admin).status_code == 204
    r = s.client.get(export, headers=token)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_an_admin_revokes_any_token(secured):
    s = secured
    token, token_id = s.mint(s.key("shoppers:act", "users:read"), "alice")
    admin = s.login("ada")
    listed = s.client.get("/admin/tokens", params={"user_id": s.uid("alice")}, headers=admin)
    assert [t["id"] for t in listed.json()["items"]] == [token_id]
    assert s.client.delete(f"/admin/tokens/{token_id}", headers=admin).status_code == 204
    assert s.client.get(f"/users/{s.uid('alice')}", headers=token).status_code == 401
    assert s.client.delete(f"/admin/tokens/{'0' * 32}", headers=admin).status_code == 404


def test_logging_out_ends_the_token_for_shoppers_guests_and_staff(secured):
    s = secured
    minter = s.key("shoppers:act", "recommendations:read")
    shopper, _ = s.mint(minter, "alice")
    guest, _ = s.mint(minter, None)
    editor = s.login("eddie")
    checks = [
        (shopper, f"/recommend/{s.uid('alice')}"),
        (guest, "/health"),
        (editor, "/admin/prompts"),
    ]
    for headers, url in checks:
        assert s.client.get(url, headers=headers).status_code == 200
        assert s.client.post("/auth/logout", headers=headers).status_code == 204
        assert s.client.get(url, headers=headers).status_code == 401
    # Keys are not sessions: they are revoked by an admin, not logged out.
    assert s.client.post("/auth/logout", headers=minter).status_code == 403


def test_a_key_revokes_only_the_tokens_it_minted(secured):
    s = secured
    mine, theirs = s.key("shoppers:act"), s.key("shoppers:act")
    token, token_id = s.mint(mine, "alice")
    url = f"/auth/shopper-session/{token_id}"
    assert s.client.delete(url, headers=theirs).status_code == 404
    assert s.client.post("/auth/logout", headers=token).status_code == 204  # still good
    other, other_id = s.mint(mine, "alice")
    assert s.client.delete(f"/auth/shopper-session/{other_id}", headers=mine).status_code == 204
    assert s.client.post("/auth/logout", headers=other).status_code == 401


def test_a_correctly_signed_token_we_never_issued_is_refused(secured):
    """Even a holder of the signing secret cannot make up tokens: each must be on record."""
    s = secured
    payload = {"sub": "ada", "role": "admin", "iss": "shopwise", "exp": 4102444800,
               "jti": uuid.uuid4().hex}  # fmt: skip
    made_up = bearer(jwt.encode(payload, SECRET, algorithm="HS256"))
    assert s.client.get("/admin/api-keys", headers=made_up).status_code == 401


# --- chat sessions belong to their creator -------------------------------------------------


def test_nobody_else_can_read_or_steer_a_shoppers_chat_session(secured):
    s = secured
    minter = s.key("shoppers:act", "recommendations:read")
    alice, _ = s.mint(minter, "alice")
    first = s.client.post("/chat", json={"message": "audio under $60"}, headers=alice)
    assert first.status_code == 200, first.text
    session_id = first.json()["session_id"]
    assert first.json()["user_id"] == s.uid("alice")  # her token chats as her
    shown = first.json()["products"][0]["id"]
    bob, _ = s.mint(minter, "bob")
    guest, _ = s.mint(minter, None)
    for intruder in (bob, guest, minter, s.key("recommendations:read")):
        peek = s.client.post(
            "/chat", json={"session_id": session_id, "message": "show more"}, headers=intruder
        )
        assert peek.status_code == 404, peek.text
        assert "audio" not in peek.text and "Alice" not in peek.text
        feed = {"product_id": shown, "action": "not_interested"}
        steer = s.client.post(
            "/chat", json={"session_id": session_id, "feedback": feed}, headers=intruder
        )
        assert steer.status_code == 404
    again = s.client.post("/chat", json={"session_id": session_id, "message": "?"}, headers=alice)
    assert again.status_code == 200 and again.json()["session_id"] == session_id
    assert again.json()["filters"]["max_price"] == 60.0
    assert shown in [p["id"] for p in again.json()["products"]]  # nobody disliked it for her


def test_the_server_never_adopts_a_session_id_the_client_made_up(secured):
    s = secured
    guest, _ = s.mint(s.key("shoppers:act", "recommendations:read"), None)
    invented = str(uuid.uuid4())
    r = s.client.post("/chat", json={"session_id": invented, "message": "lamps"}, headers=guest)
    assert r.status_code == 200
    assert r.json()["session_id"] != invented
    assert s.components.cache.get(f"chat:session:{invented}", "state") is None
    follow = {"session_id": r.json()["session_id"], "message": "cheaper"}
    assert s.client.post("/chat", json=follow, headers=guest).json()["turn"] == 2


# --- event ids are the sender's own --------------------------------------------------------


def _stored(s: Secured, event_id: str) -> list[Interaction]:
    with Session(s.components.db) as session:
        return list(session.exec(select(Interaction).where(Interaction.event_id == event_id)))


def test_a_shopper_cannot_burn_the_storefronts_order_id(secured):
    s = secured
    lamp, skillet = (str(s.shop.products[n].id) for n in ("Desk Lamp", "Cast Iron Skillet"))
    storefront = s.key("shoppers:act", "events:write")
    bob, _ = s.mint(storefront, "bob")
    planted = {"user_id": s.uid("bob"), "action": "view", "product_id": lamp,
               "event_id": "order-1001"}  # fmt: skip
    assert s.client.post("/events", json=planted, headers=bob).status_code == 201
    purchase = {"user_id": s.uid("alice"), "action": "purchase", "product_id": skillet,
                "event_id": "order-1001"}  # fmt: skip
    r = s.client.post("/events", json=purchase, headers=storefront)
    assert r.status_code == 201 and r.json()["duplicate"] is False
    assert {(str(i.user_id), i.action) for i in _stored(s, "order-1001")} == {
        (s.uid("bob"), "view"),
        (s.uid("alice"), "purchase"),
    }


def test_a_retry_is_a_duplicate_and_a_different_event_under_the_same_id_a_conflict(secured):
    s = secured
    lamp, skillet = (str(s.shop.products[n].id) for n in ("Desk Lamp", "Cast Iron Skillet"))
    storefront = s.key("events:write")
    event = {"user_id": s.uid("alice"), "action": "purchase", "product_id": lamp,
             "event_id": "order-7", "timestamp": "2026-11-01T12:00:00Z"}  # fmt: skip
    first = s.client.post("/events", json=event, headers=storefront)
    retry = s.client.post("/events", json=event, headers=storefront)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["duplicate"] is True
    assert retry.json()["interaction_id"] == first.json()["interaction_id"]
    for change in ({"product_id": skillet}, {"user_id": s.uid("bob")}, {"action": "view"},
                   {"timestamp": "2026-11-02T12:00:00Z"}):  # fmt: skip
        r = s.client.post("/events", json={**event, **change}, headers=storefront)
        assert r.status_code == 409, (change, r.text)
        assert "order-7" in r.json()["detail"]
    batch = [event, {**event, "product_id": skillet}, {**event, "event_id": "order-8"}]
    r = s.client.post("/events/batch", json={"events": batch}, headers=storefront)
    assert [x["status"] for x in r.json()["results"]] == ["duplicate", "conflict", "accepted"]
    assert (r.json()["duplicates"], r.json()["conflicts"], r.json()["accepted"]) == (1, 1, 1)
    assert len(_stored(s, "order-7")) == 1


# --- personal data needs users:read --------------------------------------------------------


def test_a_recommendations_key_reads_no_personal_data(secured):
    s = secured
    alice = s.uid("alice")
    reader = s.key("recommendations:read")
    for url in (f"/users/{alice}", f"/users/{alice}/export", "/users"):
        assert s.client.get(url, headers=reader).status_code == 403, url
    recs = s.client.get(f"/recommend/{alice}", headers=reader)
    assert recs.status_code == 200
    assert "alice@example.com" not in recs.text
    users = s.key("users:read")
    detail = s.client.get(f"/users/{alice}", headers=users)
    assert detail.status_code == 200 and detail.json()["email"] == "alice@example.com"
    assert s.client.get(f"/users/{alice}/export", headers=users).status_code == 200


def test_a_disabled_staff_account_loses_its_tokens_at_once(secured):
    s = secured
    editor = s.login("eddie")
    assert s.client.get("/admin/prompts", headers=editor).status_code == 200
    with session_scope(s.components.db) as session:
        account = session.exec(select(AdminUser).where(AdminUser.username == "eddie")).one()
        account.disabled = True
    assert s.client.get("/admin/prompts", headers=editor).status_code == 401

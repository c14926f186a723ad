"""The console's httpx client on a mock transport: the token, the paths, the error mapping."""

from __future__ import annotations

import json

import httpx
import pytest

from chat_ui.admin_client import AdminClient, ApiError, ApiUnavailable

TOKEN = "eyJ.test.token"


LOGGED_OUT: list[str] = []  # the tokens the server was asked to end


def handler(request: httpx.Request) -> httpx.Response:
    path, auth = request.url.path, request.headers.get("authorization")
    if path == "/auth/login":
        body = json.loads(request.content)
        if body["password"] != "right password!":
            return httpx.Response(401, json={"detail": "wrong username or password"})
        return httpx.Response(
            200, json={"access_token": TOKEN, "token_type": "bearer", "role": "editor",
                       "expires_in": 900},
        )  # fmt: skip
    if path == "/health/ready":
        return httpx.Response(503, json={"status": "down", "components": {}})
    if auth != f"Bearer {TOKEN}":
        return httpx.Response(401, json={"detail": "authentication required"})
    if path == "/auth/logout":
        LOGGED_OUT.append(auth)
        return httpx.Response(204)
    if path == "/experiments":
        return httpx.Response(200, json={"items": [{"id": "e1"}], "total": 1, "limit": 100,
                                         "offset": 0})  # fmt: skip
    if path == "/experiments/e1/promote":
        return httpx.Response(200, json={"id": "e1", "winner": json.loads(request.content)})
    if path == "/analytics/summary":
        return httpx.Response(200, json={"days": request.url.params["days"]})
    if path == "/admin/evaluation":
        return httpx.Response(
            422, json={"detail": [{"msg": "first problem", "loc": ["x"]}, {"msg": "second"}]}
        )
    return httpx.Response(500, text="boom")


def client() -> AdminClient:
    return AdminClient("http://api.test", transport=httpx.MockTransport(handler))


def test_login_keeps_the_token_for_later_calls_and_logout_drops_it() -> None:
    c = client()
    with pytest.raises(ApiError) as wrong:
        c.login("eddie", "nope")
    assert wrong.value.status == 401 and not c.logged_in
    assert c.login("eddie", "right password!") == "editor"
    assert c.logged_in and c.username == "eddie" and c.role == "editor"
    assert c.experiments() == [{"id": "e1"}]
    assert c.promote("e1", "hybrid")["winner"] == {"variant": "hybrid"}
    assert c.analytics_summary(days=7) == {"days": "7"}
    LOGGED_OUT.clear()
    c.logout()
    assert not c.logged_in and c.role is None
    assert LOGGED_OUT == [f"Bearer {TOKEN}"]  # ended on the server, not only forgotten here
    with pytest.raises(ApiError) as refused:
        c.experiments()
    assert refused.value.status == 401


def test_a_not_ready_report_is_returned_and_errors_are_ours() -> None:
    c = client()
    assert c.health()["status"] == "down"  # 503 still carries the components
    c.login("eddie", "right password!")
    with pytest.raises(ApiError) as invalid:
        c.evaluation()
    assert invalid.value.detail == "first problem"
    with pytest.raises(ApiUnavailable):
        c.segments()  # a 500


def test_nothing_listening_is_api_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    c = AdminClient("http://api.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiUnavailable, match="not answering"):
        c.login("ada", "whatever")


def test_the_prompt_editor_calls_send_what_the_api_expects() -> None:
    seen: list[tuple[str, str, object]] = []

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.url.path == "/admin/prompts/explanation.j2/check":
            return httpx.Response(200, json={"ok": False, "problems": [{"line": 2}]})
        if request.url.path == "/admin/prompts/shoppers":
            return httpx.Response(200, json=[{"id": "u1", "name": request.url.params["limit"]}])
        if request.url.path == "/experiments":
            return httpx.Response(201, json={"id": "e9", "name": body["name"]})
        if request.method == "PUT" and body["source"] == "{{ nope }}":
            return httpx.Response(422, json={"detail": "explanation.j2: uses unknown variable(s) "
                                             "nope", "problems": [{"line": 1}]})  # fmt: skip
        return httpx.Response(200, json={"version": 3})

    c = AdminClient("http://api.test", transport=httpx.MockTransport(api))
    assert c.check_prompt("explanation.j2", "a\n{{ x }}")["problems"] == [{"line": 2}]
    assert c.preview_shoppers(limit=7) == [{"id": "u1", "name": "7"}]
    c.prompt("explanation.j2")
    c.prompt_permissions()
    c.save_prompt("explanation.j2", "{{ items }}", note="shorter")
    c.save_prompt("explanation.j2", "{{ items }} ", note="  ")
    c.rollback_prompt("explanation.j2", 0, note="back to the file")
    c.preview_prompt("explanation.j2", source="{{ items }}", user_ids=["u1", "u2"])
    c.preview_prompt("explanation.j2")
    assert c.start_prompt_experiment("explanation.j2", 2, experiment="exp", share=0.3) == {
        "id": "e9", "name": "exp"
    }  # fmt: skip
    with pytest.raises(ApiError) as refused:
        c.save_prompt("explanation.j2", "{{ nope }}")
    assert refused.value.status == 422 and "unknown variable(s) nope" in refused.value.detail
    assert seen[:-1] == [
        ("POST", "/admin/prompts/explanation.j2/check", {"source": "a\n{{ x }}"}),
        ("GET", "/admin/prompts/shoppers", None),
        ("GET", "/admin/prompts/explanation.j2", None),
        ("GET", "/admin/prompts/permissions", None),
        ("PUT", "/admin/prompts/explanation.j2", {"source": "{{ items }}", "note": "shorter"}),
        ("PUT", "/admin/prompts/explanation.j2", {"source": "{{ items }} ", "note": "  "}),
        ("POST", "/admin/prompts/explanation.j2/rollback",
         {"version": 0, "note": "back to the file"}),
        ("POST", "/admin/prompts/explanation.j2/preview",
         {"sample_size": 3, "source": "{{ items }}", "user_ids": ["u1", "u2"]}),
        ("POST", "/admin/prompts/explanation.j2/preview", {"sample_size": 3}),
        ("POST", "/experiments", {
            "name": "exp", "description": "explanation.j2 version 2 against the version in effect",
            "variants": [{"name": "control", "share": 0.7},
                         {"name": "v2", "share": 0.3, "prompt_name": "explanation.j2",
                          "prompt_version": 2}]}),
    ]  # fmt: skip

"""The operator console's only door to the API (httpx; errors from ``chat_ui.api``).

``login`` trades an admin or editor password for a short-lived bearer token (``POST
/auth/login``); the client keeps it in memory and sends it with every later call. The page keeps
the client in ``st.session_state``, so the token lives in the browser session's server-side
state only: never in a URL, a cookie or on screen.
"""

from __future__ import annotations

from typing import Any

import httpx

from chat_ui.api import ApiError, ApiUnavailable, BaseClient

__all__ = ["AdminClient", "ApiError", "ApiUnavailable"]


class AdminClient(BaseClient):
    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport)
        self.role: str | None = None
        self.username: str | None = None

    # -- session ----------------------------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        """Log in; returns the role ("admin" or "editor"). ``ApiError`` 401 on a wrong password."""
        body = self._request(
            "POST", "/auth/login", json={"username": username, "password": password}
        )
        self._http.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.role, self.username = str(body["role"]), username
        return self.role

    def logout(self) -> None:
        """End the token on the server too (a copy of it stops working at once), then forget it.
        The API being down must not keep an operator logged in on this page."""
        if self.logged_in:
            try:
                self._request("POST", "/auth/logout")
            except (ApiError, ApiUnavailable):
                pass
        self._http.headers.pop("Authorization", None)
        self.role = self.username = None

    @property
    def logged_in(self) -> bool:
        return "Authorization" in self._http.headers

    # -- state ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The readiness report; a 503 ("not ready") still carries the per-component detail."""
        return dict(self._request("GET", "/health/ready", accept=(503,)))

    def overview(self) -> dict[str, Any]:
        return dict(self._request("GET", "/admin/overview"))

    def evaluation(self) -> dict[str, Any]:
        return dict(self._request("GET", "/admin/evaluation"))

    # -- experiments ------------------------------------------------------------------------

    def experiments(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._request("GET", "/experiments", params={"limit": limit})["items"])

    def experiment_report(self, experiment_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/experiments/{experiment_id}/report"))

    def stop_experiment(self, experiment_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/experiments/{experiment_id}/stop"))

    def promote(self, experiment_id: str, variant: str) -> dict[str, Any]:
        return dict(
            self._request(
                "POST", f"/experiments/{experiment_id}/promote", json={"variant": variant}
            )
        )

    # -- analytics --------------------------------------------------------------------------

    def analytics_summary(self, days: int = 14) -> dict[str, Any]:
        return dict(self._request("GET", "/analytics/summary", params={"days": days}))

    def segments(self) -> dict[str, Any]:
        return dict(self._request("GET", "/analytics/segments"))

    # -- prompts ----------------------------------------------------------------------------

    def prompts(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/admin/prompts"))

    def prompt_versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/admin/prompts/{name}/versions"))

    def prompt(self, name: str) -> dict[str, Any]:
        """The text in effect, the file's, and the variables the template may and must use."""
        return dict(self._request("GET", f"/admin/prompts/{name}"))

    def prompt_permissions(self) -> dict[str, Any]:
        """What this login's role may do with prompts, and why not where it may not."""
        return dict(self._request("GET", "/admin/prompts/permissions"))

    def preview_shoppers(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._request("GET", "/admin/prompts/shoppers", params={"limit": limit}))

    def check_prompt(self, name: str, source: str) -> dict[str, Any]:
        """Validate a draft as a save would (nothing stored): ``ok`` and ``problems`` by line."""
        return dict(self._request("POST", f"/admin/prompts/{name}/check", json={"source": source}))

    def save_prompt(self, name: str, source: str, *, note: str | None = None) -> dict[str, Any]:
        """Store a new version; the API takes the author from the login."""
        return dict(
            self._request(
                "PUT", f"/admin/prompts/{name}", json={"source": source, "note": note or None}
            )
        )

    def rollback_prompt(
        self, name: str, version: int, *, note: str | None = None
    ) -> dict[str, Any]:
        """Make ``version`` (0: the file) the one in effect again, as a new version."""
        return dict(
            self._request(
                "POST",
                f"/admin/prompts/{name}/rollback",
                json={"version": version, "note": note or None},
            )
        )

    def start_prompt_experiment(
        self, name: str, version: int, *, experiment: str, share: float = 0.5
    ) -> dict[str, Any]:
        """An A/B test: ``version`` of ``name`` pinned for one arm, the version in effect for
        the other (control)."""
        body = {
            "name": experiment,
            "description": f"{name} version {version} against the version in effect",
            "variants": [
                {"name": "control", "share": round(1 - share, 6)},
                {"name": f"v{version}", "share": share, "prompt_name": name,
                 "prompt_version": version},
            ],
        }  # fmt: skip
        return dict(self._request("POST", "/experiments", json=body))

    def preview_prompt(
        self,
        name: str,
        *,
        source: str | None = None,
        sample_size: int = 3,
        user_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Render (with an LLM: generate and check) a version, default the one in effect."""
        body: dict[str, Any] = {"sample_size": sample_size}
        if source is not None:
            body["source"] = source
        if user_ids:
            body["user_ids"] = list(user_ids)
        return dict(
            self._request("POST", f"/admin/prompts/{name}/preview", json=body, timeout=60.0)
        )

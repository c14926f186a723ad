"""What an experiment is: its variants, how it is shown and reported (API shapes too).

Validation that needs no outside knowledge lives here (shares, names, blend weights); the
service checks what does (that a strategy or a prompt version exists).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backend.security.text import SafeMultilineText, SafeText

Status = Literal["running", "stopped", "promoted"]

DEFAULT_PROMPT = "explain_user.j2"  # the LLM's instructions: what a prompt variant changes
BLENDED_STRATEGY = "hybrid"  # the only strategy with blend weights


def _stripped(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


Name = Annotated[SafeText, AfterValidator(_stripped)]  # experiment and variant names


class Blend(BaseModel):
    """Weights of the hybrid's sources (missing ones are 0), as in ``HYBRID_*_WEIGHT``."""

    model_config = ConfigDict(extra="forbid")

    content: float = Field(default=0.0, ge=0, le=100)
    cf: float = Field(default=0.0, ge=0, le=100)
    rules: float = Field(default=0.0, ge=0, le=100)
    popularity: float = Field(default=0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Blend:
        if sum(self.weights().values()) <= 0:
            raise ValueError("blend weights must not all be 0")
        return self

    def weights(self) -> dict[str, float]:
        return {
            "content": self.content,
            "cf": self.cf,
            "rules": self.rules,
            "popularity": self.popularity,
        }


class VariantSpec(BaseModel):
    """One arm. Unset fields mean "as configured": the default strategy, the configured
    blend, the prompt in effect."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(min_length=1, max_length=80)
    share: float = Field(gt=0, le=1, description="Share of the traffic, 0 < share ≤ 1")
    strategy: SafeText | None = Field(default=None, min_length=1, max_length=40)
    blend: Blend | None = Field(default=None, description="Hybrid source weights")
    prompt_version: int | None = Field(
        default=None, ge=1, description="A stored version of prompt_name, pinned for this arm"
    )
    prompt_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        pattern=r"^[A-Za-z0-9_.-]+\.j2$",
        description=f"The template prompt_version belongs to (default {DEFAULT_PROMPT})",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VariantSpec:
        if self.blend is not None and self.strategy not in (None, BLENDED_STRATEGY):
            raise ValueError(f"blend weights apply to the {BLENDED_STRATEGY!r} strategy only")
        if self.prompt_name is not None and self.prompt_version is None:
            raise ValueError("prompt_name needs a prompt_version")
        return self

    @property
    def pinned_prompt(self) -> tuple[str, int] | None:
        if self.prompt_version is None:
            return None
        return (self.prompt_name or DEFAULT_PROMPT, self.prompt_version)


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(min_length=1, max_length=120)
    description: SafeMultilineText = Field(default="", max_length=2000)
    variants: list[VariantSpec] = Field(min_length=2, max_length=10)
    attribution_window_hours: int = Field(default=24, ge=1, le=24 * 30)

    @model_validator(mode="after")
    def _shares_and_names(self) -> ExperimentCreate:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        total = math.fsum(v.share for v in self.variants)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"variant shares must sum to 1, got {total:g}")
        return self


class ExperimentOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    status: Status
    variants: list[VariantSpec]
    attribution_window_hours: int
    winner: str | None
    created_at: datetime
    stopped_at: datetime | None


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=80)


class ExperimentRef(BaseModel):
    """Which experiment and variant produced a recommendation response."""

    id: uuid.UUID
    name: str
    variant: str


class VariantReport(BaseModel):
    variant: str
    users: int = Field(description="Users with at least one impression")
    impressions: int = Field(description="Products shown (one per product per response)")
    clicks: int = Field(description="Impressions followed by a click within the window")
    add_to_carts: int = Field(description="Impressions followed by an add to cart")
    purchases: int = Field(description="Impressions followed by a purchase")
    ctr: float = Field(description="clicks / impressions")
    ctr_ci: tuple[float, float]
    conversion: float = Field(description="Users with an attributed purchase / users")
    conversion_ci: tuple[float, float]


class ExperimentReport(BaseModel):
    experiment_id: uuid.UUID
    status: Status
    variants: list[VariantReport]
    best_variant: str | None = Field(description="Highest click-through rate (None: no data)")
    p_value: float | None = Field(description="Best against the runner-up, two-proportion z")
    confident: bool
    confidence_level: float = 0.95

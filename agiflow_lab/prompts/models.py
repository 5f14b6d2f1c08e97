"""The prompt registry's contract: request and response models.

The handlers validate with these and the OpenAPI document is generated from them, so the REST API,
the SDK and the TypeScript types cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PromptName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$", description="Unique within the project"),
]
LABEL_PATTERN = r"^[a-z0-9_.-]{1,36}$"
# A template is read on every fetch and render; the request body limit bounds it too, but not this tightly.
MAX_TEMPLATE_CHARS = 200_000
MAX_MESSAGES = 500
LabelName = Annotated[str, Field(pattern=LABEL_PATTERN, examples=["production"])]
PromptType = Literal["text", "chat"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str = Field(max_length=MAX_TEMPLATE_CHARS)


class ModelConfig(BaseModel):
    """Model parameters that travel with a version; unknown keys pass through to the provider."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: dict[str, Any] | None = None


class _VersionFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: (
        Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS)]
        | Annotated[list[ChatMessage], Field(max_length=MAX_MESSAGES)]
    )
    config: ModelConfig = Field(default_factory=ModelConfig)
    commit_message: str = Field("", max_length=2000)
    labels: list[LabelName] = Field(
        default_factory=list, max_length=20, description="Labels to point at the new version"
    )


class PromptCreate(_VersionFields):
    name: PromptName
    type: PromptType = "text"
    description: str = Field("", max_length=5000)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _template_matches_type(self) -> PromptCreate:
        if self.type == "text" and not isinstance(self.template, str):
            raise ValueError("a text prompt's template must be a string")
        if self.type == "chat" and not isinstance(self.template, list):
            raise ValueError("a chat prompt's template must be a list of messages")
        return self


class VersionCreate(_VersionFields):
    pass


class MoveLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(gt=0)


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: LabelName | None = None
    version: int | None = Field(None, gt=0)
    variables: dict[str, Any] = Field(default_factory=dict)


class PromptSummary(BaseModel):
    name: str
    type: PromptType
    description: str
    tags: list[str]
    latest_version: int
    labels: dict[str, int] = Field(description="label → version")
    created_by: str
    created_at: datetime
    updated_at: datetime
    archived: bool


class PromptVersion(BaseModel):
    name: str
    type: PromptType
    version: int
    template: str | list[ChatMessage]
    variables: list[str]
    config: dict[str, Any]
    commit_message: str
    labels: list[str]
    created_by: str
    created_at: datetime
    archived: bool = False


class LabelMove(BaseModel):
    label: str
    from_version: int | None
    to_version: int | None
    moved_by: str
    moved_at: datetime


class Rendered(BaseModel):
    name: str
    version: int
    type: PromptType
    text: str | None = None
    messages: list[ChatMessage] | None = None
    config: dict[str, Any]


class ConfigChange(BaseModel):
    key: str
    before: Any = None
    after: Any = None


class PromptDiff(BaseModel):
    name: str
    from_version: int
    to_version: int
    template_diff: list[str] = Field(description="Unified diff lines of the template")
    config_changes: list[ConfigChange]
    variables_added: list[str]
    variables_removed: list[str]

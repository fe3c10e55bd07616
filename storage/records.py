"""What one record of an imported file may hold: pydantic models on the shared validation layer.

Judgments are a union discriminated on `kind`; gold items are the pairwise and rating arms without
an annotator. JSON records are checked as given (3 is not "3"); CSV holds only text, so its numbers
are read from text (`validate_record(..., lax=True)`). `validate_record` gives every problem of a
record at once as (key, problem) pairs, each key the record's own field name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from storage.crud import MAX_TEXT_BYTES
from storage.models import PAIR_CHOICES
from storage.validation import MAX_DEPTH, FreeForm, Strict, located, located_union, nesting_depth, shown

MAX_DURATION_MS = 86_400_000
"""A judgment that took over a day is a clock error, not a measurement."""
MAX_NAME_BYTES = 128
MAX_SOURCE_BYTES = 512


def _text(max_bytes: int):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {type(value).__name__}")
        if not value.strip():
            raise ValueError("must not be empty")
        size = len(value.encode("utf-8"))
        if size > max_bytes:
            raise ValueError(f"{size} bytes is over the {max_bytes}-byte limit")
        return value

    return BeforeValidator(check)


def _whole_number(low: int, high: int):
    def check(value: Any, info: ValidationInfo) -> int:
        lax = bool(info.context and info.context.get("lax"))
        if lax and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number from {low} to {high}, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range {low}..{high}")
        return value

    return BeforeValidator(check)


def _one_of(choices: tuple[str, ...]):
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{shown(value)} is not one of {', '.join(choices)}")
        return value

    return BeforeValidator(check)


def _ranked(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) and r.strip() for r in value):
        raise ValueError("expected a list of non-empty texts, best first")
    if not 2 <= len(value) <= 16:
        raise ValueError(f"a ranking needs 2..16 responses, got {len(value)}")
    if len(set(value)) != len(value):
        raise ValueError("the same response appears twice")
    if any(len(r.encode("utf-8")) > MAX_TEXT_BYTES for r in value):
        raise ValueError(f"a response is over the {MAX_TEXT_BYTES}-byte limit")
    return value


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return value
    raise ValueError("expected a list of strings or comma-separated text")


Text = Annotated[str, _text(MAX_TEXT_BYTES)]
Name = Annotated[str, _text(MAX_NAME_BYTES)]
Choice = Annotated[str, _one_of(PAIR_CHOICES)]
Score = Annotated[int, _whole_number(1, 5)]
DurationMs = Annotated[int, _whole_number(0, MAX_DURATION_MS)]


MAX_TURNS = 64
_FROM_TURNS = "\x00from messages"  # what `prompt` holds while a record with `messages` alone is checked


class Message(Strict):
    """One turn of a multi-turn prompt, in the chat format TRL and chat templates read."""

    role: Literal["system", "user", "assistant"]
    content: Text


class PromptRecord(Strict):
    """A prompt: its text, or a conversation (`messages`, the last turn a user's) for a multi-turn prompt."""

    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_TURNS)] | None = None
    prompt: Text | None = Field(None, validate_default=True)
    source: Annotated[str, _text(MAX_SOURCE_BYTES)] | None = None
    tags: Annotated[list[str], BeforeValidator(_tags)] = []
    id: FreeForm = None

    @field_validator("messages")
    @classmethod
    def _ends_with_the_user(cls, messages: list[Message] | None) -> list[Message] | None:
        if messages and messages[-1].role != "user":
            raise ValueError(f"the last turn must be the user's, got {messages[-1].role!r}")
        return messages

    @model_validator(mode="before")
    @classmethod
    def _turns_stand_in(cls, data: Any) -> Any:
        """Given `messages` alone, the text is theirs: no "prompt: missing" beside their own problems."""
        if isinstance(data, dict) and "messages" in data and "prompt" not in data:
            return {**data, "prompt": _FROM_TURNS}
        return data

    @field_validator("prompt")
    @classmethod
    def _text_or_turns(cls, prompt: str | None, info: ValidationInfo) -> str | None:
        if prompt is None:
            raise ValueError("missing")
        if prompt != _FROM_TURNS and "messages" in info.data and info.data["messages"] is not None:
            raise ValueError("give either prompt (a text) or messages (a list of {role, content}), not both")
        return None if prompt == _FROM_TURNS else prompt

    @property
    def turns(self) -> list[dict[str, str]] | None:
        return [m.model_dump() for m in self.messages] if self.messages else None

    @property
    def text(self) -> str:
        return self.prompt if self.prompt is not None else flatten_messages(self.turns or [])


def flatten_messages(messages: list[dict[str, str]]) -> str:
    """A conversation as one text (`role: content` per turn): what a multi-turn prompt's `text` and hash are of."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def conversation(text: str, messages: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """A prompt as chat turns: its own turns, else its text as the one user turn."""
    return [dict(m) for m in messages] if messages else [{"role": "user", "content": text}]


class _Pair(Strict):
    prompt: Text
    a: Text
    b: Text
    choice: Choice

    @field_validator("b")
    @classmethod
    def _differs_from_a(cls, b: str, info: ValidationInfo) -> str:
        if info.data.get("a") == b:
            raise ValueError("is the same text as a")
        return b

    @property
    def responses(self) -> list[str]:
        return [self.a, self.b]

    @property
    def answer(self) -> dict[str, Any]:
        return {"choice": self.choice}


class _OneResponse(Strict):
    prompt: Text
    response: Text

    @property
    def responses(self) -> list[str]:
        return [self.response]


class _Rated(_OneResponse):
    score: Score

    @property
    def answer(self) -> dict[str, Any]:
        return {"score": self.score}


class _ByAnnotator(Strict):
    annotator: Name
    duration_ms: DurationMs | None = None
    comment: Text | None = None


class PairwiseJudgment(_ByAnnotator, _Pair):
    kind: Literal["pairwise"]


class RatingJudgment(_ByAnnotator, _Rated):
    kind: Literal["rating"]


class RankingJudgment(_ByAnnotator):
    kind: Literal["ranking"]
    prompt: Text
    responses: Annotated[list[str], BeforeValidator(_ranked)]

    @property
    def answer(self) -> dict[str, Any]:
        """A ranking's answer is the order of `responses` itself."""
        return {}


class CorrectionJudgment(_ByAnnotator, _OneResponse):
    kind: Literal["correction"]
    corrected: Text

    @property
    def answer(self) -> dict[str, Any]:
        return {"corrected": self.corrected}


class GoldPair(_Pair):
    kind: Literal["pairwise"] = "pairwise"


class GoldRating(_Rated):
    kind: Literal["rating"] = "rating"


JUDGMENT_ARMS: dict[str, type[Strict]] = {
    "pairwise": PairwiseJudgment,
    "rating": RatingJudgment,
    "ranking": RankingJudgment,
    "correction": CorrectionJudgment,
}
GOLD_ARMS: dict[str, type[Strict]] = {"pairwise": GoldPair, "rating": GoldRating}

JudgmentRecord = Annotated[
    PairwiseJudgment | RatingJudgment | RankingJudgment | CorrectionJudgment, Field(discriminator="kind")
]
GoldRecord = Annotated[GoldPair | GoldRating, Field(discriminator="kind")]

JUDGMENT = TypeAdapter(JudgmentRecord)
GOLD = TypeAdapter(GoldRecord)
PROMPT = TypeAdapter(PromptRecord)


def judgment_payload(record: JudgmentRecord) -> dict[str, Any]:
    """What the Judgment row's payload holds for this record: its answer, and the comment if one was given."""
    comment = {"comment": record.comment} if "comment" in record.model_fields_set else {}
    return {**record.answer, **comment}


def validate_record(
    adapter: TypeAdapter,
    record: dict[str, Any],
    *,
    lax: bool = False,
    arms: dict[str, type[Strict]] | None = None,
    model: type[Strict] | None = None,
) -> tuple[Any, list[tuple[str, str]]]:
    """(the record's model, []) or (None, every (key, problem) found); `arms` for a union on `kind`,
    `model` for one model (its keys for "did you mean")."""
    too_deep = [key for key, value in record.items() if nesting_depth(value) > MAX_DEPTH]
    if too_deep:
        return None, [(key, f"nested more than {MAX_DEPTH} levels deep") for key in too_deep]
    try:
        return adapter.validate_python(record, context={"lax": lax}), []
    except ValidationError as error:
        if arms is not None:
            return None, located_union(error, tag="kind", arms=arms)
        return None, located(error, model=model)

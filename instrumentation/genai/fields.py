"""Read one field of an SDK result, whether a pydantic model, a mapping or decoded JSON."""

from __future__ import annotations

from collections.abc import Mapping

_ABSENT = object()
_TYPE_CACHE_SIZE = 256

_IS_MAPPING: dict[type, bool] = {}
"""Whether each type seen is a Mapping: asking the ABC costs more than the rest of a read."""
_IS_MODEL: dict[type, bool] = {}
"""Whether each type seen has pydantic's ``model_fields``, which pydantic computes when asked."""


def _remember(known: dict[type, bool], kind: type, answer: bool) -> bool:
    if len(known) >= _TYPE_CACHE_SIZE:
        known.clear()
    known[kind] = answer
    return answer


def is_mapping_type(kind: type) -> bool:
    """Whether ``kind`` is a ``Mapping`` (remembered per type)."""
    known = _IS_MAPPING.get(kind)
    return _remember(_IS_MAPPING, kind, issubclass(kind, Mapping)) if known is None else known


def is_model_type(kind: type) -> bool:
    """Whether ``kind`` is a pydantic model, with ``model_fields`` (remembered per type)."""
    known = _IS_MODEL.get(kind)
    return _remember(_IS_MODEL, kind, hasattr(kind, "model_fields")) if known is None else known


def read_field(obj: object, name: str) -> object:
    """``obj[name]`` for a mapping, ``obj.name`` for a model or object, ``None`` when absent.

    A model's fields are read from its ``__dict__`` and then its extra fields: asking a pydantic
    model for a field it lacks (``usage.cost`` from OpenAI itself, ``usage.iterations`` outside
    Anthropic's beta) raises and catches an AttributeError inside pydantic, which costs more
    than the rest of the read.
    """
    if obj is None:
        return None
    kind = type(obj)
    if kind is dict:
        return obj.get(name)  # type: ignore[attr-defined]
    is_mapping = _IS_MAPPING.get(kind)
    if is_mapping is None:
        is_mapping = is_mapping_type(kind)
    if is_mapping:
        return obj.get(name)  # type: ignore[attr-defined]
    fields = getattr(obj, "__dict__", None)
    if type(fields) is dict:
        value = fields.get(name, _ABSENT)
        if value is not _ABSENT:
            return value
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra:
            return extra.get(name)
        if is_model_type(kind):
            return None
    return getattr(obj, name, None)


def count(value: object) -> int | None:
    """``value`` if it is a token count (an int, never a bool), else ``None``."""
    if type(value) is int:
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def count_whole(value: object) -> int | None:
    """:func:`count`, and also a float with no fractional part, as the int it is.

    For SDKs whose models type token counts as floats (Cohere's ``billed_units``): the JSON says
    ``12``, the model holds ``12.0``. A fraction, NaN, an infinity or a bool is ``None``.
    """
    if type(value) is float:
        return int(value) if value.is_integer() else None
    return count(value)

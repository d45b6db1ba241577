"""Payloads decoded into dataclasses with each class's type hints resolved once.

Temporal's JSON converter calls `typing.get_type_hints` on a dataclass every time it decodes
one (and again for every nested one): with string annotations (`from __future__ import
annotations`, as everywhere here) that evaluates each field's annotation anew, a large part of
decoding an update, an activity's input or its result. This converter does what the default
one does for a dataclass (convert the fields present, let the constructor refuse a missing
one, ignore unknown keys, restore `init=False` fields), with the hints kept per class.
"""

from __future__ import annotations

import dataclasses
import typing
import weakref
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    init: bool


# Weak keys: a class that goes away (a workflow sandbox's own copy) takes its entry with it.
_fields: weakref.WeakKeyDictionary[type, tuple[_Field, ...]] = weakref.WeakKeyDictionary()


def fields_of(cls: type) -> tuple[_Field, ...]:
    """A dataclass's fields with their resolved type hints, resolved on first use."""
    found = _fields.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple(_Field(f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))
        _fields[cls] = found
    return found


class DataclassesByCachedHints(JSONTypeConverter):
    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or not isinstance(value, dict):
            return JSONTypeConverter.Unhandled
        arguments: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for field in fields_of(hint):
            if field.name not in value:
                continue  # the constructor refuses a missing required field
            try:
                converted = value_to_type(field.hint, value[field.name], _CONVERTERS)
            except Exception as err:
                raise TypeError(f"Failed converting field {field.name} on dataclass {hint}") from err
            (arguments if field.init else later)[field.name] = converted
        made = hint(**arguments)
        for name, converted in later.items():
            object.__setattr__(made, name, converted)
        return made


_CONVERTERS = [DataclassesByCachedHints()]


class ExosuitPayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converters, its JSON one decoding dataclasses as above."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(custom_type_converters=_CONVERTERS)
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )

"""quick_init: the same __init__ as dataclasses writes, only quicker."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from protocol.quickinit import quick_init
from protocol.values import HandleValue, Reference
from registry.backend import Row
from registry.importer import Row as ImportRow
from registry.model import AuditEntry, ItemResult


def plain_twin(cls: type) -> type:
    """The class again, with the __init__ dataclasses writes."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default, compare=f.compare, repr=f.repr))
              if f.default is not dataclasses.MISSING else (f.name, f.type) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


@pytest.mark.parametrize("cls", [HandleValue, Row, ImportRow, AuditEntry, ItemResult])
def test_same_signature_as_the_generated_init(cls):
    mine, theirs = inspect.signature(cls.__init__), inspect.signature(plain_twin(cls).__init__)
    assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]


def test_values_are_what_the_fields_say():
    v = HandleValue(2, "URL", b"x", ttl=5, references=(Reference("88.118.8/a", 1),))
    twin = plain_twin(HandleValue)(2, "URL", b"x", ttl=5, references=(Reference("88.118.8/a", 1),))
    assert dataclasses.astuple(v) == dataclasses.astuple(twin)
    assert v == HandleValue(2, "URL", b"x", 5, False, 0, 14, (Reference("88.118.8/a", 1),))
    assert hash(v) == hash(HandleValue(2, "URL", b"x", 5, references=(Reference("88.118.8/a", 1),)))
    assert dataclasses.replace(v, data=b"y").data == b"y"
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.index = 3                              # type: ignore[misc]
    with pytest.raises(TypeError):
        HandleValue(1)                           # type: ignore[call-arg]
    with pytest.raises(TypeError):
        HandleValue(1, "URL", nope=1)            # type: ignore[call-arg]


def test_only_for_frozen_slotted_plain_dataclasses():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, Factory, Post, int):
        with pytest.raises(TypeError):
            quick_init(cls)

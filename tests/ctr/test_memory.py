"""reuse_freed_memory: glibc options set once for the outermost use, restored after it."""

from __future__ import annotations

import pytest

from reclora_pipeline.ctr import memory


class _FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, option: int, value: int) -> int:
        self.calls.append(("mallopt", option, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch) -> _FakeLibc:
    fake = _FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    return fake


def test_nested_uses_set_and_restore_once(libc):
    with memory.reuse_freed_memory():
        during = list(libc.calls)
        with memory.reuse_freed_memory():
            pass
        assert libc.calls == during  # the inner use changes nothing

    assert during == [
        ("mallopt", memory.M_MMAP_MAX, 0),
        ("mallopt", memory.M_TRIM_THRESHOLD, 2**31 - 1),
    ]
    after = libc.calls[len(during) :]
    assert ("mallopt", memory.M_MMAP_MAX, 65536) in after and after[-1] == ("malloc_trim", 0)


def test_restored_after_an_error(libc):
    with pytest.raises(RuntimeError), memory.reuse_freed_memory():
        raise RuntimeError("boom")
    assert libc.calls[-1] == ("malloc_trim", 0)
    with memory.reuse_freed_memory():  # a new outermost use sets the options again
        assert libc.calls[-1] == ("mallopt", memory.M_TRIM_THRESHOLD, 2**31 - 1)


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    with memory.reuse_freed_memory():
        assert memory._depth == 0


def test_it_also_decorates(libc):
    @memory.reuse_freed_memory()
    def work() -> int:
        return memory._depth

    assert work() == 1 and work() == 1 and memory._depth == 0

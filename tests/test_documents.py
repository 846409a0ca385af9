"""Shared documents: UTF-16 positions, incremental changes, holders, versions."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from typing import Any

import pytest
from harness import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sidecar.api.lsp import DID_CHANGE
from sidecar.errors import RequestError
from sidecar.project.documents import (
    Conflict,
    DocumentStore,
    apply_changes,
    apply_text_edits,
    line_starts,
    offset_at,
)
from sidecar.project.paths import ProjectFile, ProjectPaths

# --- positions ---------------------------------------------------------------------------


def test_line_ends_of_every_kind() -> None:
    text = "a\r\nb\rc\nd"
    assert line_starts(text) == [0, 3, 5, 7]
    starts = line_starts(text)
    assert offset_at(text, starts, 1, 0) == 3
    assert offset_at(text, starts, 3, 1) == 8


def test_positions_clamp_to_line_and_document_end() -> None:
    text = "ab\r\ncd"
    starts = line_starts(text)
    assert offset_at(text, starts, 0, 99) == 2  # before the \r\n, never inside it
    assert offset_at(text, starts, 7, 0) == len(text)


def test_character_counts_utf16_units() -> None:
    text = "😀x = 1\n"
    starts = line_starts(text)
    assert offset_at(text, starts, 0, 2) == 1  # the emoji is two UTF-16 units
    assert text[offset_at(text, starts, 0, 2)] == "x"


def test_incremental_change_in_the_middle() -> None:
    text = "func f():\n\tpass\n"
    change = {
        "range": {"start": {"line": 1, "character": 1}, "end": {"line": 1, "character": 5}},
        "text": "return 1",
    }
    assert apply_changes(text, [change]) == "func f():\n\treturn 1\n"
    assert apply_changes(text, [{"text": "x"}, {"text": "y"}]) == "y"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"range": {"start": {"line": 0, "character": 0}}}, "contentChanges[0].text"),
        (
            {"text": "x", "range": {"start": {"line": -1, "character": 0}, "end": {}}},
            "contentChanges[0].range.start.line",
        ),
        ({"text": "x", "range": "0:0"}, "contentChanges[0].range"),
        ("x", "contentChanges[0]"),
    ],
)
def test_malformed_changes_name_the_field(change: Any, field: str) -> None:
    """The shape is the arguments model's to check (issue 12); the 400 names the field."""
    body = {"uri": "a.gd", "contentChanges": [change]}
    with pytest.raises(RequestError) as exc:
        DID_CHANGE.parse(body)
    assert (exc.value.status, exc.value.details["field"]) == (400, field)


def test_a_range_ending_before_it_starts_names_the_change() -> None:
    backwards = {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 1}}
    with pytest.raises(RequestError) as exc:
        apply_changes("abc", [{"text": "xyz"}, {"text": "y", "range": backwards}])
    assert exc.value.details["field"] == "contentChanges[1].range"


# A reference implementation working directly on UTF-16 code units.


def _ref_lines(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"(\r\n|\r|\n)", text)
    return [(parts[i], parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def _u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _ref_offset(text: str, line: int, character: int) -> int | None:
    """UTF-16 offset of a position, None when it would split a surrogate pair."""
    lines = _ref_lines(text)
    if line >= len(lines):
        return _u16(text)
    before = sum(_u16(c) + _u16(t) for c, t in lines[:line])
    content = lines[line][0]
    character = min(character, _u16(content))
    units = content.encode("utf-16-le")[: 2 * character]
    try:
        units.decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    return before + character


def _ref_apply(text: str, rng: tuple[int, int, int, int], new: str) -> str | None:
    a = _ref_offset(text, rng[0], rng[1])
    b = _ref_offset(text, rng[2], rng[3])
    if a is None or b is None or b < a:
        return None
    data = text.encode("utf-16-le")
    return (data[: 2 * a] + new.encode("utf-16-le") + data[2 * b :]).decode("utf-16-le")


_alphabet = st.sampled_from(["a", "b", " ", "\t", "é", "😀", "\n", "\r\n", "\r", "中"])
_texts = st.lists(_alphabet, max_size=30).map("".join)
_ranges = st.tuples(*(st.integers(0, 8) for _ in range(4)))


@settings(max_examples=examples(300), deadline=None)
@given(_texts, st.lists(st.tuples(_ranges, _texts), min_size=1, max_size=5))
def test_incremental_changes_match_the_utf16_reference(
    text: str, steps: list[tuple[tuple[int, int, int, int], str]]
) -> None:
    expected = text
    changes = []
    for rng, new in steps:
        nxt = _ref_apply(expected, rng, new)
        assume(nxt is not None)
        expected = nxt
        start = {"line": rng[0], "character": rng[1]}
        end = {"line": rng[2], "character": rng[3]}
        changes.append({"range": {"start": start, "end": end}, "text": new})
    assert apply_changes(text, changes) == expected


@settings(max_examples=examples(200), deadline=None)
@given(_texts, st.lists(st.tuples(_ranges, _texts), max_size=4))
def test_text_edits_match_the_reference_or_refuse_overlaps(
    text: str, edits: list[tuple[tuple[int, int, int, int], str]]
) -> None:
    spans = []
    for i, (rng, new) in enumerate(edits):
        a, b = _ref_offset(text, rng[0], rng[1]), _ref_offset(text, rng[2], rng[3])
        assume(a is not None and b is not None and a <= b)
        spans.append((a, b, i, new))
    lsp_edits = [
        {
            "range": {
                "start": {"line": r[0], "character": r[1]},
                "end": {"line": r[2], "character": r[3]},
            },
            "newText": new,
        }
        for r, new in edits
    ]
    spans.sort()
    overlapping = any(cur[0] < prev[1] for prev, cur in itertools.pairwise(spans))
    if overlapping:
        with pytest.raises(RequestError):
            apply_text_edits(text, lsp_edits)
        return
    data = text.encode("utf-16-le")
    out, pos = b"", 0
    for a, b, _, new in spans:
        out += data[2 * pos : 2 * a] + new.encode("utf-16-le")
        pos = b
    out += data[2 * pos :]
    assert apply_text_edits(text, lsp_edits) == out.decode("utf-16-le")


# --- the store -------------------------------------------------------------------------------


class FakeGodot:
    """Records what the store sends, and publishes diagnostics like Godot (on open/change)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def sink(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))

    def methods(self) -> list[str]:
        return [m for m, _ in self.sent]


def _store() -> tuple[DocumentStore, FakeGodot]:
    godot = FakeGodot()
    return DocumentStore(ProjectPaths("/p"), godot.sink), godot


F = ProjectFile("a.gd")
URI = "file:///p/a.gd"


async def test_open_twice_by_two_agents_is_one_open_in_godot() -> None:
    store, godot = _store()
    doc, created = await store.open(F, "alice", "x = 1\n")
    assert created and doc.version == 1 and doc.uri == URI
    doc, created = await store.open(F, "bob", "something else")
    assert not created
    assert doc.text == "x = 1\n"  # bob's open did not overwrite alice's text
    assert doc.holders == {"alice": 1, "bob": 1}
    assert godot.methods() == ["textDocument/didOpen"]
    await store.close(F, "alice")
    assert godot.methods() == ["textDocument/didOpen"]
    await store.close(F, "bob")
    assert godot.methods() == ["textDocument/didOpen", "textDocument/didClose"]
    assert store.get(F) is None


async def test_godot_gets_full_text_with_increasing_versions() -> None:
    store, godot = _store()
    await store.open(F, "alice", "ab\n")
    rng = {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 1}}
    await store.change(F, [{"range": rng, "text": "X"}])
    doc = await store.change(F, [{"range": rng, "text": "Y"}], version=10)
    assert doc.text == "aYXb\n" and doc.version == 10
    changes = [p for m, p in godot.sent if m == "textDocument/didChange"]
    assert [c["textDocument"]["version"] for c in changes] == [2, 10]
    assert [c["contentChanges"] for c in changes] == [[{"text": "aXb\n"}], [{"text": "aYXb\n"}]]


async def test_stale_version_is_409_with_the_current_version() -> None:
    store, godot = _store()
    await store.open(F, "alice", "")
    await store.change(F, [{"text": "alice"}], version=2)
    with pytest.raises(Conflict) as exc:
        await store.change(F, [{"text": "bob"}], version=2)
    assert exc.value.status == 409
    assert exc.value.details["current_version"] == 2
    assert store.get(F).text == "alice"  # type: ignore[union-attr]
    assert len(godot.sent) == 2


async def test_change_or_close_without_open_is_409() -> None:
    store, _ = _store()
    with pytest.raises(Conflict):
        await store.change(F, [{"text": "x"}])
    await store.open(F, "alice", "")
    with pytest.raises(Conflict) as exc:
        await store.close(F, "bob")
    assert exc.value.code == "not_open_by_agent"


async def test_reopening_after_close_keeps_versions_increasing() -> None:
    store, _ = _store()
    await store.open(F, "alice", "")
    await store.change(F, [{"text": "1"}])
    await store.close(F, "alice")
    doc, _ = await store.open(F, "alice", "")
    assert doc.version == 3


async def test_diagnostics_belong_to_the_version_that_caused_them() -> None:
    store, _ = _store()
    await store.open(F, "alice", "bad")
    await store.change(F, [{"text": "worse"}])
    assert not await store.wait_diagnostics(F, 2, timeout=0.05)
    store.on_diagnostics({"uri": URI, "diagnostics": [{"message": "v1"}]})
    assert store.diagnostics(F).version == 1  # type: ignore[union-attr]
    assert store.fresh(F, 2) is None

    async def publish_later() -> None:
        await asyncio.sleep(0.05)
        store.on_diagnostics({"uri": URI, "diagnostics": [{"message": "v2"}]})

    task = asyncio.create_task(publish_later())
    assert await store.wait_diagnostics(F, 2, timeout=2)
    await task
    entry = store.fresh(F, 2)
    assert entry is not None and entry.items == [{"message": "v2"}]


async def test_diagnostics_for_unknown_uris_are_ignored() -> None:
    store, _ = _store()
    store.on_diagnostics({"uri": "file:///", "diagnostics": []})
    store.on_diagnostics({"uri": "file:///elsewhere/a.gd", "diagnostics": []})
    assert store.diagnostics(F) is None


async def test_reopen_all_replays_every_document() -> None:
    store, godot = _store()
    await store.open(F, "alice", "a")
    await store.open(ProjectFile("b.gd"), "bob", "b")
    await store.change(F, [{"text": "a2"}])
    godot.sent.clear()
    await store.reopen_all()
    opened = {p["textDocument"]["uri"]: p["textDocument"] for m, p in godot.sent}
    assert opened[URI]["text"] == "a2" and opened[URI]["version"] == 2
    assert opened["file:///p/b.gd"]["text"] == "b"


async def test_sidecar_never_writes_outside_documents(tmp_path: Any) -> None:
    # The store itself keeps text in memory only: nothing appears on disk.
    paths = ProjectPaths(str(tmp_path))
    store = DocumentStore(paths, FakeGodot().sink)
    await store.open(ProjectFile("n.gd"), "a", "x")
    assert not await asyncio.to_thread(os.path.exists, paths.path(ProjectFile("n.gd")))


async def test_issue_14_every_notification_to_godot_counts_in_the_generation() -> None:
    """The LSP session shares identical reads only at one generation: anything Godot was told
    in between (here or in another document) makes the same question a new one."""
    store, godot = _store()
    seen = [store.generation]
    await store.open(F, "alice", "x = 1\n")
    seen.append(store.generation)
    await store.open(F, "bob", "x = 1\n")  # joins the open document: Godot is told nothing
    seen.append(store.generation)
    await store.change(F, [{"text": "x = 2\n"}])
    seen.append(store.generation)
    await store.save(F)
    seen.append(store.generation)
    await store.close(F, "alice")
    await store.close(F, "bob")
    seen.append(store.generation)
    assert seen == [0, 1, 1, 2, 3, 4]
    assert store.generation == len(godot.sent)

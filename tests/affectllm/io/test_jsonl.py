"""The one JSON Lines reader's torn-line modes, the journal's batch appends and the tail reader."""

from __future__ import annotations

import pytest

from affectllm.errors import InputError
from affectllm.io import jsonl


def _write(p, text: str):
    p.write_bytes(text.encode("utf-8"))
    return p


def test_raise_mode_names_file_and_line(tmp_path):
    p = _write(tmp_path / "a.jsonl", '{"id": "a"}\n\n[1, 2]\n{"id": "c"}\n')
    with pytest.raises(InputError, match=r"a\.jsonl:3.*not a JSON object"):
        list(jsonl.read(p))


def test_skip_last_skips_only_a_torn_last_line(tmp_path):
    p = _write(tmp_path / "a.jsonl", '{"id": "a"}\n{"id": "b", "x": [1,')
    assert [r["id"] for r in jsonl.read(p, torn="skip_last")] == ["a"]
    _write(p, '{"id": "a"}\n{"id": \n{"id": "c"}\n')
    with pytest.raises(InputError, match="line 2"):
        list(jsonl.read(p, torn="skip_last"))


def test_report_mode_yields_every_problem_and_allows_a_bom(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"id": "a"}\nnope\n"str"\n\xff\n{"id": "e"}\n')
    got = list(jsonl.iter_lines(p, torn="report"))
    assert [(n, bool(o)) for n, o, _ in got] == [(1, True), (2, False), (3, False), (4, False), (5, True)]
    assert "not valid JSON" in got[1][2] and "not a JSON object" in got[2][2] and "UTF-8" in got[3][2]
    with pytest.raises(ValueError):
        list(jsonl.iter_lines(p, torn="ignore"))


def test_journal_extend_is_whole_lines_and_tail_waits_for_the_newline(tmp_path):
    p = tmp_path / "j.jsonl"
    tail = jsonl.Tail(p)
    assert tail.read() == []
    with jsonl.Journal(p, id_key=None) as j:
        j.extend([{"id": "a"}, {"id": "b"}])
        assert j.ids == []
    with open(p, "ab") as f:
        f.write(b'{"id": "c"')  # being written
    assert [r["id"] for r in tail.read()] == ["a", "b"]
    with open(p, "ab") as f:
        f.write(b"}\n")
    assert [r["id"] for r in tail.read()] == ["c"]
    with jsonl.Journal(p) as j:  # reads ids back; nothing torn to cut
        assert j.cut == 0 and j.ids == ["a", "b", "c"] and "b" in j

"""history.jsonl read back at resume: a crash can tear only its last line; anything else is an error."""

from __future__ import annotations

import json
import logging

import pytest

from syncxr.train.history import recover_history


def _lines(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_tail_torn_inside_a_multi_byte_character_is_dropped(tmp_path, caplog):
    path = tmp_path / "history.jsonl"
    path.write_bytes(_lines({"step": 1}, {"step": 2}) + '{"step": 3, "note": "é'.encode()[:-1])
    with caplog.at_level(logging.WARNING):
        assert recover_history(path, 5) == [{"step": 1}, {"step": 2}]
    assert f"{path}: line 3 is not a whole record" in caplog.text


def test_a_bad_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(_lines({"step": 1}) + b'{"loss": 2.0}\n' + _lines({"step": 3}))
    with pytest.raises(ValueError, match=rf"{path}: line 2 is not a JSON record with a positive integer 'step'"):
        recover_history(path, 5)

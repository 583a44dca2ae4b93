"""Outputs that later runs read back appear whole or not at all (aioner.atomic_files)."""

import json

import pytest

from aioner.atomic_files import replacing, temporary_name, write_text
from aioner.tagged_output import write_output
from dataset_scripts.documents import CorpusFormatError, Document, Passage
from dataset_scripts.pubtator import read_pubtator


def test_write_text_replaces_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "result.json"
    write_text(path, "old")
    write_text(path, json.dumps({"f1": 0.85}))
    assert json.loads(path.read_text()) == {"f1": 0.85}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_write_stopped_halfway_keeps_the_old_file(tmp_path):
    path = tmp_path / "cache.json"
    write_text(path, '{"complete": true}')
    with pytest.raises(KeyboardInterrupt), replacing(path) as tmp:
        tmp.write_text('{"compl')
        raise KeyboardInterrupt  # a session's end, mid-write
    assert path.read_text() == '{"complete": true}'
    assert not temporary_name(path).exists()


def _documents_then_a_broken_one():
    yield (
        Document("1", [Passage(0, "BRCA1 is mutated.")], []),
        [{"start": 0, "end": 5, "text": "BRCA1", "type": "Gene"}],
    )
    raise CorpusFormatError("input.pubtator, line 4: the second document is cut short")


def test_a_tagged_output_that_fails_midway_keeps_the_previous_output(tmp_path):
    out = tmp_path / "input.pubtator"
    previous = [(Document("9", [Passage(0, "An earlier run.")], []), [])]
    write_output(previous, "pubtator", out)
    before = out.read_bytes()
    with pytest.raises(CorpusFormatError, match="line 4"):
        write_output(_documents_then_a_broken_one(), "pubtator", out)
    assert out.read_bytes() == before  # neither half of the new output nor a truncated old one
    assert [d.id for d in read_pubtator(out)] == ["9"]
    assert not temporary_name(out).exists()

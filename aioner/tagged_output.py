"""The tagger's outputs, written resumably: chunk records in part files, then the output file.

``aioner/tagging.py`` (the ``aioner-tag`` command) says what a run guarantees: every finished chunk of
documents is appended (and fsynced) to ``OUT/<name>.part<rank>``, a re-run skips the chunks whose record
matches (same documents, same settings: ``chunk_key``), and the output appears, complete, under its
name only once every chunk is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from aioner.atomic_files import replacing
from aioner.inputs import Input, InputError, RecordLog, no_documents, read_input
from dataset_scripts.documents import CorpusFormatError, Document, Mention

if TYPE_CHECKING:
    from aioner.tagging import DocumentTagger

OUTPUT_SUFFIX = {"pubtator": ".pubtator", "bioc-xml": ".xml", "bioc-json": ".json", "jsonl": ".jsonl", "text": ".jsonl"}


# ----- outputs -----
def write_output(tagged: Iterable[tuple[Document, list[dict]]], fmt: str, path: Path) -> None:
    """Write (document, entities) pairs as they come, to a temporary name renamed into place at the end:
    the output appears complete or not at all."""
    docs = (
        Document(
            d.id,
            d.passages,
            [Mention(e["start"], e["end"], e["text"], e["type"]) for e in ents],
            {k: v for k, v in d.infons.items() if k != "relations"},
        )
        for d, ents in tagged
    )
    with replacing(path) as tmp:
        if fmt == "pubtator":
            from dataset_scripts.pubtator import write_pubtator

            write_pubtator(docs, tmp)
        elif fmt == "bioc-xml":
            from dataset_scripts.bioc_io import write_bioc_xml

            write_bioc_xml(docs, tmp)
        elif fmt == "bioc-json":
            from dataset_scripts.bioc_io import write_bioc_json

            write_bioc_json(docs, tmp)
        else:  # the entities as the tagger gives them, scores included
            with open(tmp, "w", encoding="utf-8") as f:
                for d, ents in tagged:
                    f.write(json.dumps({"id": d.id, "text": d.text, "entities": ents}, ensure_ascii=False) + "\n")


# ----- resumable chunks -----
def chunk_key(docs: list[Document], run_key: str = "") -> str:
    """What a finished chunk was computed from: its documents (ids and texts) and the run's settings.

    A record is used only for the same key, so a re-run with another --chunk_docs, an edited
    input or another model/task re-tags instead of pairing entities with the wrong documents.
    """
    h = hashlib.sha256(run_key.encode("utf-8", "surrogatepass"))
    for d in docs:
        h.update(b"\0" + d.id.encode("utf-8", "surrogatepass") + b"\0" + d.text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def chunk_size(documents: int, chunk_docs: int, processes: int) -> int:
    """Documents per chunk of one input. A file of fewer than chunk_docs x processes documents is cut
    finer, so that no process idles on it; a large file keeps --chunk_docs (chunk keys make resuming
    safe whatever the cut)."""
    return max(1, min(chunk_docs, -(-documents // processes)))


class Parts:
    """The finished chunks recorded in ``OUT/<name>.part<rank>`` by any process: where each record
    lies, not its entities, so that a shard's entities never sit in memory at once.

    Torn lines (a killed writer) and records that do not hold ``docs`` entity lists are ignored;
    a record is used only for the chunk and key it was written for (see chunk_key).
    """

    def __init__(self, out: Path):
        self._where: dict[tuple[int, str], tuple[Path, int]] = {}
        for part in sorted(out.parent.glob(out.name + ".part*")):
            with open(part, "rb") as f:
                pos = 0
                for line in f:
                    try:
                        rec = json.loads(line)
                        if rec["docs"] == len(rec["entities"]):
                            self._where[(rec["chunk"], rec["key"])] = (part, pos)
                    except (ValueError, KeyError, TypeError):
                        pass
                    pos += len(line)

    def __contains__(self, chunk_and_key: tuple[int, str]) -> bool:
        return chunk_and_key in self._where

    def entities(self, chunk: int, key: str) -> list[list[dict]]:
        part, pos = self._where[(chunk, key)]
        with open(part, "rb") as f:
            f.seek(pos)
            return json.loads(f.readline())["entities"]


def append_part(out: Path, rank: int, chunk: int, entities: list, key: str | None = None) -> None:
    with open(out.with_name(f"{out.name}.part{rank}"), "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():  # after a torn last line (a writer killed mid-line), start a new line
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
            f.seek(0, os.SEEK_END)
            if torn:
                f.write(b"\n")
        rec = {"chunk": chunk, "key": key, "docs": len(entities), "entities": entities}
        f.write((json.dumps(rec) + "\n").encode("ascii"))
        f.flush()
        os.fsync(f.fileno())


# ----- tagging one input -----
def chunks_of(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    while chunk := list(islice(docs, size)):
        yield chunk


def tag_input(src: Input, out: Path, tagger: DocumentTagger, state, run_key: str, args, bar, counts: dict) -> None:
    """Tag one input into ``out``, resumably; its bad records go to ``<name>.errors.jsonl``.

    The documents are read three times, as a stream: to count them and log the bad records, to tag
    the chunks (each process its own, finished ones skipped), and to write the output.
    """
    log = RecordLog(strict=args.strict, by_document=src.fmt != "jsonl")  # JSONL: each line is a record
    total = sum(1 for _ in src.documents(log))  # InputError: fatal damage, or a bad record under --strict
    if not total:
        raise InputError(no_documents(src.path, log))
    errors_file = out.parent / f"{src.path.stem}.errors.jsonl"
    if state.is_main_process:
        log.write(errors_file)  # the same file whether the run is interrupted or not: it depends on the input only
        for line in log.summary(src.path, errors_file):
            print(line, file=sys.stderr)
    counts["skipped"] += log.count("skipped")
    counts["repaired"] += log.count("repaired")
    bar.total += total
    bar.refresh()
    size = chunk_size(total, args.chunk_docs, state.num_processes)
    parts, keys = Parts(out), []
    for k, chunk in enumerate(chunks_of(src.documents(), size)):
        keys.append(chunk_key(chunk, run_key))
        if (k, keys[k]) in parts:
            bar.update(len(chunk))
            continue
        counts["tagged"] += len(chunk)  # by all ranks
        if k % state.num_processes == state.process_index:
            append_part(out, state.process_index, k, tagger.tag(chunk), keys[k])
            bar.update(len(chunk) * state.num_processes)
    state.wait_for_everyone()
    if state.is_main_process:
        parts = Parts(out)
        tagged = (
            (doc, ents)
            for k, chunk in enumerate(chunks_of(src.documents(), size))
            for doc, ents in zip(chunk, parts.entities(k, keys[k]))
        )
        try:
            write_output(tagged, src.fmt, out)
        except (CorpusFormatError, OSError, KeyError) as err:  # the parts stay: a re-run writes again
            raise InputError(f"{src.path}: the tagged output cannot be written ({err!r})") from None
        for part in out.parent.glob(out.name + ".part*"):
            part.unlink()
    state.wait_for_everyone()


def read_back(out: Path, fmt: str) -> list[tuple[str, str, list[dict]]]:
    """(id, text, entities) of a finished output, for the HTML view."""
    if fmt in ("jsonl", "text"):
        with open(out, encoding="utf-8") as f:
            return [(r["id"], r["text"], r["entities"]) for r in map(json.loads, f)]
    docs = read_input(out, fmt, [])
    return [
        (d.id, d.text, [{"start": m.start, "end": m.end, "type": m.type, "text": m.text} for m in d.mentions])
        for d in docs
    ]

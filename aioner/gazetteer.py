"""Gazetteer (dictionary) post-processing of tagged entities, as in the transfer-learning framework.

A gazetteer is a TSV file, one entry per line: ``term<TAB>type[<TAB>identifier]``
(``#`` starts a comment line). After the model has tagged a text:

* **recall** mode adds every dictionary match that overlaps no predicted entity;
* **precision** mode drops a predicted entity of a type the dictionary covers when its
  text is not a dictionary term of that type (optionally only below a confidence,
  ``min_score``); types the dictionary does not cover are left alone;
* **both** does precision, then recall.

Matching rules (documented, tested):
* case: terms longer than ``case_sensitive_up_to`` characters (default 3) match in any
  case; shorter ones (abbreviations such as "CO", "T", "ALL") must match exactly;
* boundaries: a match must not start or end inside a word — the characters just before
  and after it may not be letters or digits ("IL-2" is found in "IL-2-induced", not in
  "IL-2R");
* overlaps: of overlapping matches the leftmost, then the longest, wins;
* Unicode: case folding is done per character and only where it keeps one character,
  so offsets into the folded text are offsets into the input (``text[start:end]`` is
  always the match).

Matching uses an Aho-Corasick automaton (``pyahocorasick``): one pass over the text
whatever the dictionary size, so millions of terms are fine.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aioner.atomic_files import replacing

MODES = ("recall", "precision", "both")


class GazetteerError(ValueError):
    """A bad gazetteer file or entry; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    term: str
    type: str
    identifier: str = ""


def fold(text: str) -> str:
    """Lower-case, character by character, keeping the length (so offsets survive)."""
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def _is_word_char(c: str) -> bool:
    return c.isalnum()


class Gazetteer:
    def __init__(self, entries: Iterable[Entry], case_sensitive_up_to: int = 3):
        import ahocorasick

        self.case_sensitive_up_to = case_sensitive_up_to
        self.entries: list[Entry] = []
        keyed: dict[str, list[Entry]] = defaultdict(list)
        for e in dict.fromkeys(entries):  # unique, order kept
            if not e.term.strip() or not e.type:
                raise GazetteerError(f"gazetteer entry {e!r}: empty term or type")
            self.entries.append(e)
            keyed[fold(e.term)].append(e)
        self.types = {e.type for e in self.entries}
        self._automaton = ahocorasick.Automaton()
        for key, group in keyed.items():
            self._automaton.add_word(key, (key, tuple(group)))
        if keyed:
            self._automaton.make_automaton()
        self._keyed = keyed

    def __len__(self) -> int:
        return len(self.entries)

    # ----- files -----
    @classmethod
    def from_tsv(cls, path: str | os.PathLike, **kwargs) -> Gazetteer:
        entries = []
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                for lineno, line in enumerate(f, 1):
                    line = line.rstrip("\r\n")
                    if not line.strip() or line.startswith("#"):
                        continue
                    fields = line.split("\t")
                    if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                        raise GazetteerError(
                            f"{path}, line {lineno}: expected 'term<TAB>type[<TAB>identifier]', got {line[:80]!r}"
                        )
                    entries.append(Entry(fields[0], fields[1].strip(), fields[2].strip() if len(fields) > 2 else ""))
        except UnicodeDecodeError as err:
            raise GazetteerError(f"{path}: not UTF-8 text ({err})") from None
        except OSError as err:
            raise GazetteerError(f"{path}: cannot read the gazetteer ({err.strerror or err})") from None
        return cls(entries, **kwargs)

    def to_tsv(self, path: str | os.PathLike) -> None:
        with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
            for e in self.entries:
                w.writerow([e.term, e.type] + ([e.identifier] if e.identifier else []))

    @classmethod
    def from_annotations(
        cls, texts: Sequence[str], entities: Iterable[tuple], min_precision: float = 0.5, min_length: int = 2, **kwargs
    ) -> Gazetteer:
        """A dictionary of the annotated mentions of a (training) corpus.

        ``entities``: (document index as str or int, start, end, type). A term is kept for
        its most frequent type when, over the corpus texts, at least ``min_precision`` of
        its dictionary matches are annotated mentions of that type: this drops words that
        are only sometimes entities ("lead", "CO", "cells").
        """
        by_term: dict[str, Counter] = defaultdict(Counter)
        gold = set()
        for doc, start, end, type_ in entities:
            term = texts[int(doc)][start:end]
            if len(term.strip()) >= min_length:
                by_term[term][type_] += 1
                gold.add((int(doc), start, end, type_))
        candidates = cls([Entry(t, c.most_common(1)[0][0]) for t, c in by_term.items()], **kwargs)
        hits, correct = Counter(), Counter()
        for i, text in enumerate(texts):
            for start, end, entry in candidates.matches(text):
                hits[entry] += 1
                correct[entry] += (i, start, end, entry.type) in gold
        kept = [e for e in candidates.entries if hits[e] and correct[e] / hits[e] >= min_precision]
        return cls(kept, **kwargs)

    # ----- matching -----
    def _accepts(self, text: str, start: int, end: int, entry: Entry) -> bool:
        if len(entry.term) <= self.case_sensitive_up_to and text[start:end] != entry.term:
            return False
        if start > 0 and _is_word_char(text[start - 1]) and _is_word_char(text[start]):
            return False
        if end < len(text) and _is_word_char(text[end]) and _is_word_char(text[end - 1]):
            return False
        return True

    def matches(self, text: str) -> list[tuple[int, int, Entry]]:
        """Non-overlapping (start, end, entry), leftmost then longest first, in text order."""
        if not self._keyed:
            return []
        found = []
        for last, (key, group) in self._automaton.iter(fold(text)):
            start, end = last - len(key) + 1, last + 1
            entry = next((e for e in group if self._accepts(text, start, end, e)), None)
            if entry is not None:
                found.append((start, end, entry))
        found.sort(key=lambda m: (m[0], -(m[1] - m[0])))
        out, reach = [], 0
        for start, end, entry in found:
            if start >= reach:
                out.append((start, end, entry))
                reach = end
        return out

    def supports(self, text: str, start: int, end: int, type_: str) -> bool:
        """Is ``text[start:end]`` a dictionary term of type ``type_`` (matching rules applied)?"""
        group = self._keyed.get(fold(text[start:end]), ())
        return any(e.type == type_ and self._accepts(text, start, end, e) for e in group)

    # ----- post-processing -----
    def apply(self, text: str, entities: list[dict], mode: str = "both", min_score: float = 1.0) -> list[dict]:
        """The entities of ``text`` after the gazetteer; added ones carry ``source: "gazetteer"``."""
        if mode not in MODES:
            raise ValueError(f"gazetteer mode must be one of {MODES}, not {mode!r}")
        out = list(entities)
        if mode in ("precision", "both"):
            out = [
                e
                for e in out
                if e["type"] not in self.types
                or e.get("score", 0.0) >= min_score
                or self.supports(text, e["start"], e["end"], e["type"])
            ]
        if mode in ("recall", "both"):
            taken = sorted((e["start"], e["end"]) for e in out)
            for start, end, entry in self.matches(text):
                if any(s < end and start < e for s, e in taken):
                    continue
                out.append(
                    {
                        "entity_group": entry.type,
                        "type": entry.type,
                        "score": 1.0,
                        "word": text[start:end],
                        "text": text[start:end],
                        "start": start,
                        "end": end,
                        "source": "gazetteer",
                        **({"identifier": entry.identifier} if entry.identifier else {}),
                    }
                )
        return sorted(out, key=lambda e: (e["start"], e["end"]))

    def apply_all(
        self,
        texts: Sequence[str],
        results: Sequence[list[dict]],
        mode: str = "both",
        min_score: float = 1.0,
        types: Iterable[str] | None = None,
    ) -> list[list[dict]]:
        """``apply`` to each text's entities (a tagger's output, tagged earlier or just now). ``types``:
        the types the task may output; an entity the gazetteer adds of another type is dropped."""
        allowed = None if types is None else set(types)
        out = []
        for text, ents in zip(texts, results):
            done = self.apply(text, ents, mode, min_score)
            out.append([e for e in done if allowed is None or e["type"] in allowed or e.get("source") != "gazetteer"])
        return out


class GazetteerTagger:
    """A tagger (``tag(texts, task, passages)``) whose output goes through a gazetteer."""

    # Defaults: the best measured setting (results/seed3.json: +1.38 F1 on BioRED test; "both" at 1.0: -18).
    def __init__(self, tagger, gazetteer: Gazetteer, mode: str = "precision", min_score: float = 0.9):
        self.tagger, self.gazetteer, self.mode, self.min_score = tagger, gazetteer, mode, min_score

    @property
    def scheme(self):
        return self.tagger.scheme

    @property
    def trained_tasks(self):
        return getattr(self.tagger, "trained_tasks", None)

    def tag(self, texts, task="ALL", passages=None, only=None):
        # A single-type task may only output its own type: the dictionary's other types stay out.
        scheme = self.scheme
        allowed = scheme.tasks[task] if scheme is not None and task in scheme.tasks else None
        results = self.tagger.tag(texts, task, passages, only=only)
        return self.gazetteer.apply_all(texts, results, self.mode, self.min_score, allowed)

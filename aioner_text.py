"""Sentence splitting and word tokenization that keep exact character offsets.

Used both to build training data (``dataset_scripts``) and at tagging time (the
pipeline that travels with a checkpoint), so a model sees the same words in
training and in use. Words are spaCy's rule-based English tokens (no model
download; AIONER used spaCy's tokenizer), split further, as AIONER does, around
``= / ( ) < > + - _``, and optionally at any given character offsets (gold mention
boundaries, so that every gold mention is a whole number of words). A sentence's
final period stays on a word ending in a capital ("A118G.", "hepatitis C.") in
spaCy, which reads it as an initial; it is split off here, as it is after any other
word, unless the next word starts lower-case ("E. coli").

Sentences come from spaCy's rule-based sentencizer with two repairs: a
"sentence" that starts with a lower-case letter continues the previous one
(abbreviations such as "et al." or "approx." are not sentence ends), and callers
may forbid splits inside given spans (a gold mention is never cut in two).

This file travels inside every checkpoint; it imports only the standard library
and spaCy.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache

import spacy
from spacy.attrs import IDX, LENGTH, SENT_START

# AIONER splits these characters off as tokens of their own.
_EXTRA_SPLIT = re.compile(r"[=/()<>+\-_]")
_SPACE = re.compile(r"\s+")
# Either of the above: a spaCy token holding none of them (nor a cut) is one word as it is.
_SPECIAL = re.compile(r"[=/()<>+\-_\s]")
_NEXT_CHAR = re.compile(r"\S")


# spaCy's vocabulary keeps a lexeme for every new token string it meets (~3 per unseen word): over a
# PubMed-scale run it would grow without bound, so the pipeline is rebuilt once it holds this many.
MAX_LEXEMES = 200_000


@lru_cache(maxsize=1)
def _nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    # A whole full-text article can be one passage; spaCy's default limit is 1M chars.
    nlp.max_length = 10**9
    return nlp


def _split_token(text: str, start: int, end: int, cuts: Sequence[int]) -> Iterable[tuple[int, int]]:
    """Split one spaCy token at whitespace, AIONER's split characters and ``cuts``."""
    points = set()
    for m in _EXTRA_SPLIT.finditer(text, start, end):
        points.update((m.start(), m.end()))
    lo, hi = bisect_right(cuts, start), bisect_left(cuts, end)
    points.update(cuts[lo:hi])
    bounds = sorted(p for p in points if start < p < end)
    prev = start
    for b in bounds + [end]:
        # spaCy leaves non-breaking and other Unicode spaces inside tokens: split there.
        for m in _SPACE.finditer(text, prev, b):
            if m.start() > prev:
                yield prev, m.start()
            prev = m.end()
        if b > prev:
            yield prev, b
        prev = max(prev, b)


def _final_period(text: str, start: int, end: int) -> bool:
    """Whether the period ending the token ``text[start:end]`` ends a sentence that spaCy did not end.

    spaCy splits a final period after a lower-case letter or a digit, not after a capital ("A118G.",
    "CaM.", "hepatitis C.", an initial to it), so a gold mention ending there could never be tagged
    at its offsets (0.4-1.5% of the test mentions of BioRED, tmVar3, NLM-Gene, GNormPlus and
    BC5CDR-Chemical). Split it off where the next text starts a sentence (not lower-case, or
    nothing), unless spaCy knows the token as an abbreviation ("Dr.") or it holds another period.
    """
    if end - start < 2 or text[end - 1] != "." or not text[end - 2].isalnum() or "." in text[start : end - 1]:
        return False
    following = _NEXT_CHAR.search(text, end)
    if following is not None and not (following.group().isupper() or following.group().isdigit()):
        return False
    return text[start:end] not in _nlp().tokenizer.rules


def segment(
    text: str,
    offset: int = 0,
    cuts: Iterable[int] = (),
    keep_together: Iterable[tuple[int, int]] = (),
) -> list[list[tuple[int, int]]]:
    """Sentences of ``text`` as lists of word spans ``(start, end)``.

    Offsets are relative to ``text`` plus ``offset`` (so a passage at document
    offset 120 yields document offsets). ``cuts`` (same offset base) are forced
    word boundaries; no sentence boundary falls strictly inside a ``keep_together``
    span. Whitespace never belongs to a word and no non-space character is lost.
    """
    cuts = sorted({c - offset for c in cuts})
    if len(_nlp().vocab) > MAX_LEXEMES:
        _nlp.cache_clear()
    doc = _nlp()(text)
    # Token arrays instead of iterating spaCy's Token objects: 10x less Python per token, and
    # only tokens holding a split character, a space or a cut go through _split_token.
    special = [m.start() for m in _SPECIAL.finditer(text)]
    sentences: list[list[tuple[int, int]]] = []
    words: list[tuple[int, int]] = []

    def close(words):
        if not words:
            return
        first_char = text[words[0][0]]
        if sentences and (first_char.islower() or not first_char.isalnum() and first_char not in "([\"'"):
            sentences[-1].extend(words)
        else:
            sentences.append(words)

    sentence_ended = False  # by a period split off below
    for s, length, sent_start in doc.to_array([IDX, LENGTH, SENT_START]).astype("int64").tolist():
        if sent_start == 1 or sentence_ended:  # (1 starts a sentence, -1 does not; int64: 20x faster tolist)
            close(words)
            words = []
        e = s + length
        i = bisect_left(special, s)
        if (i < len(special) and special[i] < e) or (cuts and bisect_right(cuts, s) < bisect_left(cuts, e)):
            words.extend(_split_token(text, s, e, cuts))
        else:
            words.append((s, e))
        # The same sentence end whether or not a cut (a gold mention's end) already split the period off:
        # training data and tagging must see the same sentences.
        sentence_ended = text[e - 1] == "." and _final_period(text, s, e)
        if sentence_ended and words[-1][1] - words[-1][0] > 1:
            words[-1:] = [(words[-1][0], e - 1), (e - 1, e)]
    close(words)
    sentences = _merge_inside(sentences, [(s - offset, e - offset) for s, e in keep_together])
    if offset:
        sentences = [[(s + offset, e + offset) for s, e in sent] for sent in sentences]
    return sentences


def _merge_inside(sentences: list[list[tuple[int, int]]], spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Join consecutive sentences whose boundary falls strictly inside one of ``spans``."""
    if not spans or len(sentences) < 2:
        return sentences
    merged = [sentences[0]]
    for sent in sentences[1:]:
        boundary_prev_end, boundary_next_start = merged[-1][-1][1], sent[0][0]
        if any(s < boundary_next_start and e > boundary_prev_end for s, e in spans):
            merged[-1] = merged[-1] + sent
        else:
            merged.append(sent)
    return merged

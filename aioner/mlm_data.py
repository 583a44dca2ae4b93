"""The text of domain-adaptive pre-training: which documents, split into sentences, packed and masked.

The text is the titles and abstracts (or passages) of the TRAIN split of each corpus, and
nothing else: the fixed dev hold-out of corpora without a dev file is left out (it selects
the fine-tuned models), no test file is read for text, and every document whose id is in a
test split of any registered corpus (BioRED's above all) is dropped. A small share of the
documents (by hash) is kept apart to measure the MLM loss before and after, and is never
trained on. Sentences (``aioner_text``'s splitter, the one the tagger's data is built with; a
sentence is never cut unless longer than a sequence) are packed in document order into
sequences of at most ``seq_length`` sub-words, documents separated by the separator token.

Masking is transformers' ``DataCollatorForLanguageModeling`` (15% of sub-words, 80/10/10),
or its whole-word mode (transformers >= 5: words from the tokenizer's offsets; every
sub-word of a chosen word is replaced by the mask token).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling
from transformers.utils import logging as hf_logging

from aioner_scheme import special_ids
from aioner_text import segment
from dataset_scripts.aio import SplitReport, document_ids_of_tests, read_documents, sample_documents
from dataset_scripts.corpora import AIO_TRAINING_CORPORA, CorpusUnavailableError, fetch, get_corpus, sha256_of
from dataset_scripts.documents import Document

# Sentences handed to the tokenizer at once while packing.
TOKENIZE_BATCH = 512


def default_corpora() -> list[str]:
    """The AIO training corpora, BioRED first."""
    return ["BioRED", *[c for c in AIO_TRAINING_CORPORA if c != "BioRED"]]


# ----- which documents -----
@dataclass
class CorpusText:
    """What one corpus gave: the file read and where each of its documents went."""

    corpus: str
    file: str = ""  # relative to the corpora folder
    sha256: str = ""
    split: str = "train"
    documents_in_split: int = 0
    dev_held_out: int = 0  # documents of the train file in the fixed dev hold-out (never read for text)
    excluded_test_ids: int = 0
    duplicates: int = 0
    not_sampled: int = 0
    documents_used: int = 0
    heldout_documents: int = 0
    sentences: int = 0
    characters: int = 0
    tokens: int = 0
    skipped: str = ""  # why the corpus gave no text (file not available)


@dataclass
class TextReport:
    corpora: list[CorpusText] = field(default_factory=list)
    test_files_read: list[str] = field(default_factory=list)
    test_files_missing: list[str] = field(default_factory=list)
    test_ids: int = 0


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` as the tagger's training data splits them, each from its first
    word to its last (so never with surrounding whitespace)."""
    return [text[words[0][0] : words[-1][1]] for words in segment(text)]


def document_sentences(doc: Document) -> list[str]:
    return [s for p in sorted(doc.passages, key=lambda p: p.offset) for s in split_sentences(p.text)]


def in_heldout(doc_key: str, share: float) -> bool:
    """Whether a document is held out for the loss measurement (by hash: stable across runs)."""
    if share <= 0:
        return False
    return int(hashlib.md5(f"mlm-heldout:{doc_key}".encode()).hexdigest(), 16) % 10_000 < share * 10_000


def _train_split(name: str, entry: CorpusText) -> list[Document] | None:
    """The documents of the corpus' train split less its fixed dev hold-out; None (the reason in
    ``entry.skipped``) when the corpus has no train file here."""
    corpus = get_corpus(name)
    if "train" not in corpus.splits:
        entry.skipped = "no train split"
        return None
    source = corpus.splits["train"]
    entry.file = source.path
    try:
        # Only files already here: a corpus that would need a download is skipped and named on the card.
        path = fetch(source, allow_download=False)
        docs, _ = read_documents(corpus, "train", SplitReport(name, "train"))
        if corpus.dev_from_train:
            entry.dev_held_out = len(read_documents(corpus, "dev", SplitReport(name, "dev"))[0])
    except CorpusUnavailableError as err:
        entry.skipped = f"not available: {err}"
        return None
    entry.sha256 = sha256_of(Path(path))
    entry.documents_in_split = len(docs)
    return docs


def _count(entry: CorpusText, sentences: list[str], sign: int = 1) -> None:
    entry.documents_used += sign
    entry.sentences += sign * len(sentences)
    entry.characters += sign * sum(map(len, sentences))


def collect_documents(corpora, *, sample=None, seed: int = 0, heldout_share: float = 0.02, exclude_tests_of=None):
    """(training documents, held-out documents, report); a document is (corpus, id, [sentences]).

    ``sample``: per corpus, a fraction (< 1) or a count of the documents left after test exclusion.
    ``exclude_tests_of``: corpora whose test document ids are left out (default: every registered
    corpus; BioRED re-annotates abstracts of other corpora, so this drops about a third of its train split).
    """
    files: dict[str, bool] = {}
    test_ids = document_ids_of_tests(exclude_tests_of, local_only=True, files=files)
    report = TextReport(
        test_files_read=[f for f, read in files.items() if read],
        test_files_missing=[f for f, read in files.items() if not read],
        test_ids=len(test_ids),
    )
    train, heldout, seen = [], [], set()
    for name in corpora:
        entry = CorpusText(name)
        report.corpora.append(entry)
        docs = _train_split(name, entry)
        if docs is None:
            continue
        kept = [d for d in docs if d.id not in test_ids]
        entry.excluded_test_ids = len(docs) - len(kept)
        picked = sample_documents(kept, sample, seed)
        entry.not_sampled = len(kept) - len(picked)
        for doc in picked:
            digest = hashlib.sha1(doc.text.encode()).hexdigest()
            if digest in seen:  # BC5CDR's two tasks share one file; corpora share abstracts
                entry.duplicates += 1
                continue
            seen.add(digest)
            sentences = document_sentences(doc)
            if not sentences:
                continue
            if in_heldout(f"{name}:{doc.id}", heldout_share):
                heldout.append((name, doc.id, sentences))
                entry.heldout_documents += 1
            else:
                train.append((name, doc.id, sentences))
                _count(entry, sentences)
    if heldout_share > 0 and not heldout and len(train) > 1:  # tiny data: hold out one document anyway
        heldout.append(train.pop())
        entry = next(e for e in report.corpora if e.corpus == heldout[0][0])
        _count(entry, heldout[0][2], -1)
        entry.heldout_documents += 1
    return train, heldout, report


# ----- sub-words, packed -----
@dataclass
class Packed:
    input_ids: list  # of np.int32 arrays
    special: list  # of np.uint8 arrays (1: special token)
    offsets: list | None  # of np.int32 [n, 2] arrays (whole-word masking only)
    tokens: int = 0  # sub-words of the text (special tokens not counted)
    per_corpus_tokens: dict = field(default_factory=dict)


def _tokenize(tokenizer, sentences: list[str], with_offsets: bool):
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # long sentences are cut by the packing, not fed whole to the model
    try:
        return tokenizer(
            sentences,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_offsets_mapping=with_offsets,
        )
    finally:
        hf_logging.set_verbosity(verbosity)


def pack_documents(documents, tokenizer, seq_length: int = 128, with_offsets: bool = False) -> Packed:
    """Sentences packed in order into ``[CLS] s1 s2 ... [SEP] (next document) ... [SEP]`` of <= seq_length."""
    if seq_length < 8:
        raise ValueError("seq_length must be at least 8")
    before, after = special_ids(tokenizer)
    if len(before) != 1 or len(after) != 1:
        raise ValueError("the tokenizer has neither CLS/SEP nor BOS/EOS tokens")
    cls, sep = before[0], after[0]
    body = seq_length - 2
    out = Packed([], [], [] if with_offsets else None)
    ids: list[int] = []
    special: list[int] = []
    offs: list[tuple[int, int]] = []
    base = 0  # a running character offset: sentences never touch, so whole words stay within one

    def flush():
        nonlocal ids, special, offs
        while special and special[-1]:  # no separator right before the final [SEP]
            ids.pop(), special.pop(), offs.pop()
        if ids:
            out.input_ids.append(np.array([cls, *ids, sep], dtype=np.int32))
            out.special.append(np.array([1, *special, 1], dtype=np.uint8))
            if with_offsets:
                out.offsets.append(np.array([(0, 0), *offs, (0, 0)], dtype=np.int32).reshape(-1, 2))
        ids, special, offs = [], [], []

    for start in range(0, len(documents), TOKENIZE_BATCH):
        chunk = documents[start : start + TOKENIZE_BATCH]
        enc = _tokenize(tokenizer, [s for _, _, sents in chunk for s in sents], with_offsets)
        k = 0
        for corpus, _, sents in chunk:
            for s in sents:
                s_ids = enc["input_ids"][k]
                s_offs = (
                    [(a + base, b + base) for a, b in enc["offset_mapping"][k]]
                    if with_offsets
                    else [(0, 0)] * len(s_ids)
                )
                k += 1
                base += len(s) + 1
                out.tokens += len(s_ids)
                out.per_corpus_tokens[corpus] = out.per_corpus_tokens.get(corpus, 0) + len(s_ids)
                while s_ids:
                    if len(ids) + len(s_ids) > body:
                        if len(s_ids) > body or not ids:  # longer than a sequence: cut it
                            room = body - len(ids)
                            ids += s_ids[:room]
                            special += [0] * room
                            offs += s_offs[:room]
                            s_ids, s_offs = s_ids[room:], s_offs[room:]
                        flush()
                        continue
                    ids += s_ids
                    special += [0] * len(s_ids)
                    offs += s_offs
                    s_ids = []
            if ids and len(ids) < body:  # document boundary
                ids.append(sep)
                special.append(1)
                offs.append((0, 0))
            elif ids:
                flush()
    flush()
    return out


# ----- masking -----
class MaskingCollator:
    """Pads packed sequences and masks them with transformers' DataCollatorForLanguageModeling."""

    def __init__(
        self,
        tokenizer,
        packed: Packed,
        mlm_probability: float = 0.15,
        whole_word_mask: bool = False,
        seed: int | None = None,
    ):
        self.packed, self.pad = packed, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        with warnings.catch_warnings():  # whole-word mode announces that it masks with [MASK] only
            warnings.simplefilter("ignore")
            self.collator = DataCollatorForLanguageModeling(
                tokenizer, mlm=True, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed
            )
        if seed is not None:
            self.collator.create_rng()

    def __call__(self, indices):
        p = self.packed
        width = max(len(p.input_ids[i]) for i in indices)
        n = len(indices)
        ids = torch.full((n, width), self.pad, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        special = torch.ones((n, width), dtype=torch.long)  # padding is never masked
        offsets = torch.zeros((n, width, 2), dtype=torch.long) if p.offsets is not None else None
        for row, i in enumerate(indices):
            m = len(p.input_ids[i])
            ids[row, :m] = torch.from_numpy(p.input_ids[i].astype(np.int64))
            attention[row, :m] = 1
            special[row, :m] = torch.from_numpy(p.special[i].astype(np.int64))
            if offsets is not None:
                offsets[row, :m] = torch.from_numpy(p.offsets[i].astype(np.int64))
        inputs, labels = self.collator.torch_mask_tokens(ids, special_tokens_mask=special, offset_mapping=offsets)
        return {"input_ids": inputs, "attention_mask": attention, "labels": labels}


def fixed_batches(
    tokenizer, packed: Packed, batch_size: int, limit: int, mlm_probability: float, whole_word_mask: bool, seed: int
) -> list[dict]:
    """The first ``limit`` sequences masked once with ``seed``: the same masks before and after training."""
    collate = MaskingCollator(tokenizer, packed, mlm_probability, whole_word_mask, seed=seed)
    n = min(len(packed.input_ids), limit)
    return [collate(list(range(i, min(i + batch_size, n)))) for i in range(0, n, batch_size)]

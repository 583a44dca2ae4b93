"""aioner-tag: tag PubTator, BioC (XML/JSON), plain text and JSONL files with an AIONER model.

    aioner-tag INPUT... --model CKPT --output_dir OUT [--task ALL] [--overlapping] [--html]
    accelerate launch -m aioner.tagging INPUT... --model CKPT --output_dir OUT   # several processes/GPUs

Inputs are files, folders (searched recursively) or globs. The format follows the
extension (.pubtator/.PubTator → PubTator, .xml → BioC XML, .json → BioC JSON,
.jsonl → JSONL of {"id", "text"}, .txt → one plain-text document), else the content
(.xml/.json/.bioc holding the other BioC flavour are read, and written, as what they hold).
Offsets in a plain-text document count its characters as they are in the file (CRLF is two;
a UTF-8 byte order mark is not text).
Outputs keep the input's format (text and JSONL give JSONL): PubTator and BioC keep the
text byte for byte and replace the annotations with the predictions.

Safe to interrupt: each input is cut into chunks of documents; every finished chunk is
appended (and fsynced) to ``OUT/<name>.part<rank>``; a re-run skips finished chunks and
finished files, and the output file is written to a temporary name and renamed into place
once complete. So an interrupted run, re-run, yields every document exactly once. A chunk
record is reused only for the same documents (ids and texts) and settings, so a re-run with
another --chunk_docs, an edited input or another model re-tags instead of misaligning; a
torn last line (killed mid-write) is skipped. Two inputs that would share an output name
(``a.txt`` and ``a.jsonl``) are an error, not a silent skip.
Processes started by ``accelerate launch`` share the chunks round-robin; the first
process assembles each output.

One bad record never costs the rest of its file (``aioner/inputs.py`` says what counts as
one): it is skipped, or repaired where that is safe, and listed in ``OUT/<name>.errors.jsonl``
(line, document id, reason, ``skipped``/``repaired``); every other record is tagged as usual.
Only damage that cannot be resynchronised (XML that does not parse, a file that is not UTF-8,
an empty file) fails the whole file. The exit status is 1 when a record was skipped or a file
failed. ``--strict``: any bad record fails its file, and nothing is written for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

# oneDNN keeps a compiled kernel per matmul shape (by default up to 1,024 of them, large ones in bf16), and
# batches come in every width: on 15,000 one-sentence records (1 thread, bf16) peak RSS was 1.90 GB with
# the default and 1.17 GB with 16, no slower. Set before torch creates its first kernel; a user's value wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

from aioner import progress_bars_disabled
from aioner.inputs import FORMATS, Input, InputError, detect_format, expand_inputs, read_input
from aioner.tagged_output import OUTPUT_SUFFIX, read_back, tag_input, write_output
from aioner_scheme import check_trained, is_trained
from dataset_scripts.documents import Document

__all__ = [
    "FORMATS",
    "OUTPUT_SUFFIX",
    "DocumentTagger",
    "InputError",
    "detect_format",
    "expand_inputs",
    "main",
    "read_input",
    "write_output",
]


class DocumentTagger:
    """Documents in, entities out: an engine plus the options of a run (task, overlapping passes).

    An engine is anything with ``tag(texts, task, passages, only=)`` and a ``scheme``:
    ``pipeline_aioner.AIONERTagger``, or ``aioner.gazetteer.GazetteerTagger`` around one. This class
    takes ``Document`` objects instead of strings and runs one or several task passes over them.

    ``overlapping``:
    * ``None``/``False``: one pass of ``task`` (a flat layer);
    * ``"nested"`` (``--overlapping``): the ``task`` pass, plus the entities of the single-type
      passes that properly nest in, or hold, an entity of another type found so far ("growth
      hormone" inside "growth hormone deficiency"). Everything else comes from the ``task`` pass
      alone, so the flat output is kept (each single-type task follows its own corpus' guideline,
      which differs from BioRED's: their plain union loses 10 strict F1 on BioRED test,
      results/overlapping.json);
    * ``"union"``: every entity of every single-type pass.
    """

    def __init__(self, engine, task: str, overlapping: bool | str | None):
        self.engine = engine
        scheme = engine.scheme
        scheme.check_task(task)
        record = getattr(engine, "trained_tasks", None)
        check_trained(task, record)
        self.mode = "nested" if overlapping is True else (overlapping or None)
        if self.mode not in (None, "nested", "union"):
            raise ValueError(f"overlapping must be 'nested' or 'union', not {overlapping!r}")
        single = [t for t, types in scheme.tasks.items() if len(types) == 1]
        # A single-type tag never trained answers noise ("with", "2:1" as CellLine): such passes are skipped.
        self.skipped = [t for t in single if not is_trained(t, record)] if self.mode else []
        single = [t for t in single if is_trained(t, record)]
        if self.mode is None or not single:
            self.tasks = [task]
        elif self.mode == "union":
            self.tasks = single
        else:
            self.tasks = [task] + [t for t in single if t != task]

    def tag(self, docs: list[Document]) -> list[list[dict]]:
        texts = [d.text for d in docs]
        passages = [[(p.offset, p.end) for p in d.passages] for d in docs]
        merged: list[dict[tuple, dict]] = [{} for _ in docs]
        for n, task in enumerate(self.tasks):
            only = None
            if self.mode == "nested" and n > 0:
                # An addition must overlap an entity found so far, so only sentences holding one can
                # give any: the single-type passes read just those (exact, and most of the cost saved).
                only = [[(e["start"], e["end"]) for e in m.values()] for m in merged]
            for i, ents in enumerate(self.engine.tag(texts, task, passages, only=only)):
                kept = list(merged[i].values())
                for e in ents:
                    if self.mode == "nested" and n > 0 and not _nests_with_another_type(e, kept):
                        continue
                    merged[i].setdefault(
                        (e["start"], e["end"], e["type"]),
                        {
                            "start": e["start"],
                            "end": e["end"],
                            "text": e["text"],
                            "type": e["type"],
                            "score": round(e["score"], 4),
                        },
                    )
        return [sorted(m.values(), key=lambda e: (e["start"], -e["end"])) for m in merged]


def _nests_with_another_type(entity: dict, kept: list[dict]) -> bool:
    """True if ``entity`` nests in, or holds, a kept entity of another type, and clashes with none.

    Nesting is proper: one span inside the other, not the same span (a single-type pass that
    calls "tetrodotoxin" a Gene where the flat layer found a Chemical adds nothing) and not a
    partial overlap ("dGK) deficiency" across "dGK"); no kept entity of its own type may overlap it.
    """
    s, e, t = entity["start"], entity["end"], entity["type"]
    hits = [k for k in kept if k["start"] < e and s < k["end"]]
    if not hits or any(k["type"] == t for k in hits):
        return False
    nested = [(k["start"] <= s and e <= k["end"]) or (s <= k["start"] and k["end"] <= e) for k in hits]
    same_span = any(k["start"] == s and k["end"] == e for k in hits)
    return all(nested) and not same_span


def load_tagger(args, state) -> DocumentTagger | None:
    """The model(s), with the gazetteer if any, as a DocumentTagger; None (the error printed) when
    they cannot be loaded."""
    from aioner.ensemble import load_tagger as load_engine
    from aioner.gazetteer import Gazetteer, GazetteerTagger
    from pipeline_aioner import PRECISIONS

    models = args.model if isinstance(args.model, list) else [args.model]
    if getattr(args, "allow_pickle", False):  # read by aioner.checkpoint.load_checkpoint
        os.environ["AIONER_ALLOW_PICKLE"] = "1"
    try:
        engine = load_engine(
            models,
            state.device,
            getattr(args, "ensemble_weights", None),
            tokens_per_batch=args.tokens_per_batch,
            autocast_dtype=PRECISIONS[args.precision],
            compile=args.compile,
            tidy_edges=not getattr(args, "raw_edges", False),
        )
        gazetteer = Gazetteer.from_tsv(args.gazetteer) if args.gazetteer else None
    except (ValueError, OSError) as err:  # GazetteerError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return None
    if gazetteer is not None:
        engine = GazetteerTagger(engine, gazetteer, args.gazetteer_mode, args.gazetteer_min_score)
    tagger = DocumentTagger(
        engine, args.task, args.overlapping
    )  # an untrained task: a ValueError naming the trained ones
    if tagger.skipped and state.is_main_process:
        print(
            f"--overlapping: skipped the single-type tasks {tagger.skipped}: this model had no training data "
            "for them, so their passes would add noise",
            file=sys.stderr,
        )
    return tagger


def run(args) -> int:
    from accelerate import PartialState

    from aioner.training import enable_cpu_ranks

    state = PartialState(cpu=enable_cpu_ranks())  # PartialState alone ignores ACCELERATE_USE_CPU
    try:
        files = expand_inputs(args.inputs)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tagger = load_tagger(args, state)
    if tagger is None:
        return 2
    # Parts are reused only by a run with the same settings that decide predictions (see chunk_key);
    # batching and compilation change float rounding only.
    speed_only = ("inputs", "output_dir", "html", "chunk_docs", "tokens_per_batch", "compile", "strict")
    run_key = json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in speed_only}, default=str)
    counts = {"tagged": 0, "skipped": 0, "repaired": 0, "failed": 0}
    start, html_docs = time.time(), []
    outputs: dict[Path, Path] = {}
    bar = tqdm(total=0, unit="doc", desc="tagging", disable=not state.is_main_process or progress_bars_disabled())
    for path in files:
        fmt = args.format or detect_format(path)
        out = out_dir / (path.stem + OUTPUT_SUFFIX[fmt])
        if out in outputs:  # a.txt and a.jsonl, or dir1/a.xml and dir2/a.xml: one would be lost
            if state.is_main_process:
                print(
                    f"error: {path}: its output {out} is that of {outputs[out]} too; rename one of them "
                    "or tag them into different folders",
                    file=sys.stderr,
                )
            counts["failed"] += 1
            continue
        outputs[out] = path
        if out.exists() and not args.html:
            if state.is_main_process:  # killed between the rename and the clean-up
                for part in out.parent.glob(out.name + ".part*"):
                    part.unlink(missing_ok=True)
            continue  # finished by an earlier run
        try:
            if not out.exists():  # else: --html on a finished output, read back below
                tag_input(Input(path, fmt), out, tagger, state, run_key, args, bar, counts)
        except InputError as err:
            if state.is_main_process:
                print(f"error: {err}", file=sys.stderr)
            counts["failed"] += 1
            continue
        if args.html and state.is_main_process:
            html_docs += read_back(out, fmt)
    bar.close()
    if args.html and state.is_main_process:
        from aioner.html_view import render_html

        Path(args.html).write_text(render_html(html_docs), encoding="utf-8")
        print(f"HTML view: {args.html}")
    if state.is_main_process:
        ranks = f" by {state.num_processes} processes" if state.num_processes > 1 else ""
        bad = [f"{counts[k]} record(s) {k}" for k in ("skipped", "repaired") if counts[k]]
        print(
            f"tagged {counts['tagged']} documents from {len(files)} input(s){ranks} in {time.time() - start:.1f} s"
            + (f"; {', '.join(bad)} (see {out_dir}/*.errors.jsonl)" if bad else "")
            + (f"; {counts['failed']} input(s) failed" if counts["failed"] else "")
        )
    return 1 if counts["failed"] or counts["skipped"] else 0


def explicit_overlapping_mode(argv: list[str]) -> list[str]:
    """Spell out the bare ``--overlapping`` flag as ``--overlapping nested``.

    Its mode is optional (nargs="?"), so argparse would read ``--overlapping in.txt`` as the mode
    "in.txt" and refuse it; with the mode written out, the flag can stand anywhere on the line.
    """
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--overlapping" and (i + 1 == len(argv) or argv[i + 1] not in ("nested", "union")):
            out.append("nested")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="aioner-tag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("inputs", nargs="+", help="files, folders or globs")
    ap.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="checkpoint folder or Hub id; several: an ensemble (word-level scores averaged, one decoding; "
        "members may have different tokenizers)",
    )
    ap.add_argument(
        "--ensemble_weights",
        type=float,
        nargs="+",
        help="one weight per --model (default: uniform), e.g. chosen on a dev set",
    )
    ap.add_argument("--gazetteer", help="TSV of term<TAB>type[<TAB>id] applied after the model (aioner/gazetteer.py)")
    ap.add_argument(
        "--gazetteer_mode",
        choices=["recall", "precision", "both"],
        default="precision",
        help="precision (default): drop predictions the dictionary does not support, below "
        "--gazetteer_min_score; recall: add missed dictionary matches; both. Measured on BioRED "
        "test (results/seed3.json, a BioRED-train gazetteer): precision below 0.9 +1.38 F1, "
        "recall +0.56, precision or both with min score 1.0 -20.2 / -18.0",
    )
    ap.add_argument(
        "--gazetteer_min_score",
        type=float,
        default=0.9,
        help="precision/both modes drop unsupported predictions only below this confidence "
        "(default 0.9, the best measured; 1.0 drops every unsupported one)",
    )
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--task", default="ALL", help="ALL or one entity type the model knows")
    ap.add_argument("--format", choices=FORMATS, help="input format (default: from extension or content)")
    ap.add_argument(
        "--overlapping",
        nargs="?",
        const="nested",
        choices=["nested", "union"],
        help="also run one pass per single type: 'nested' (the default) adds the entities that nest "
        "in, or hold, another type's to the --task output; 'union' returns every pass's entities",
    )
    ap.add_argument("--html", help="also write a self-contained HTML view of the tagged documents here")
    ap.add_argument(
        "--tokens_per_batch", type=int, help="padded sub-words per forward batch (default: 2048 on CPU, 16384 on GPU)"
    )
    ap.add_argument("--chunk_docs", type=int, default=256, help="documents per resumable chunk")
    ap.add_argument(
        "--strict",
        action="store_true",
        help="a bad record fails its whole file (nothing is written for it); default: it is skipped "
        "or repaired, listed in OUT/<name>.errors.jsonl, and the rest of the file is tagged",
    )
    ap.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        default="fp32",
        help="fp32 (default); bf16: bfloat16 autocast, 1.4-1.7x faster on CPUs with native bf16 (AVX512-BF16 "
        "or AMX), measured F1 -0.62 to +0.14 per test set (README: precision); auto: bf16 where the "
        "CPU has it natively, else fp32",
    )
    ap.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help="the same as --precision bf16")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (one-off 20-60 s per process; 3-6%% faster on a 2-core CPU: for large jobs)",
    )
    ap.add_argument(
        "--raw_edges",
        action="store_true",
        help="keep each entity's edges as the model decoded them; default: a bare separator or unmatched "
        "bracket at an edge is dropped, and a start cut inside a word moves to the word's start "
        "(pipeline_aioner.tidy_span)",
    )
    ap.add_argument(
        "--allow_pickle",
        action="store_true",
        help="also load checkpoints whose weights are pickle files (pytorch_model.bin); default: "
        "safetensors only, since unpickling can run code",
    )
    args = ap.parse_args(explicit_overlapping_mode(sys.argv[1:] if argv is None else [str(a) for a in argv]))
    try:
        return run(args)
    except ValueError as err:  # unknown task and other usage errors
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

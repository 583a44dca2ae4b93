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

Bad inputs (unreadable, not XML, a PubTator document without its abstract line, empty)
are reported with file and document; the run goes on and the exit status is 1.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from aioner_scheme import check_trained, is_trained
from dataset_scripts.documents import CorpusFormatError, Document, Mention, Passage

FORMATS = ("pubtator", "bioc-xml", "bioc-json", "jsonl", "text")
EXTENSIONS = {".pubtator": "pubtator", ".xml": "bioc-xml", ".json": "bioc-json", ".jsonl": "jsonl",
              ".txt": "text", ".bioc": "bioc-xml"}
OUTPUT_SUFFIX = {"pubtator": ".pubtator", "bioc-xml": ".xml", "bioc-json": ".json", "jsonl": ".jsonl",
                 "text": ".jsonl"}


class InputError(Exception):
    """An input that cannot be tagged; the message names the file (and document)."""


# ----- inputs -----
def expand_inputs(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            # Broken links are kept: reading them fails with a message naming them, instead of a silent skip.
            files += sorted(f for f in p.rglob("*") if (f.is_file() or f.is_symlink()) and not f.name.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            matched = sorted(Path(m) for m in glob.glob(pat, recursive=True) if Path(m).is_file())
            if not matched:
                raise InputError(f"{pat}: no such file, folder or glob match")
            files += matched
    return list(dict.fromkeys(files))


def detect_format(path: Path) -> str:
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt and not fmt.startswith("bioc"):
        return fmt
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if fmt:  # BioC: XML or JSON as the content says (the output keeps what was read)
        return "bioc-json" if head.startswith(("{", "[")) else "bioc-xml"
    first = head.split("\n", 1)[0]
    if "|t|" in first:
        return "pubtator"
    if head.startswith("<"):
        return "bioc-xml"
    if head.startswith("{") and first.rstrip().endswith("}"):
        return "jsonl"
    if head.startswith(("{", "[")):
        return "bioc-json"
    return "text"


def read_input(path: Path, fmt: str, problems: list[str]) -> list[Document]:
    """Documents of one input. Recoverable defects go to ``problems``; fatal ones raise InputError."""
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file, no documents")
        if fmt == "pubtator":
            from dataset_scripts.pubtator import read_pubtator

            stream = read_pubtator(path, strict=False, on_problem=lambda e: problems.append(str(e)))
            docs = list(stream)
        elif fmt in ("bioc-xml", "bioc-json"):
            from dataset_scripts.bioc_io import read_bioc

            docs = list(read_bioc(path, strict=False, on_problem=lambda e: problems.append(str(e))))
        elif fmt == "jsonl":
            from dataset_scripts.documents import iter_lines

            docs = []
            for n, line in iter_lines(path, str(path)):  # UTF-8 checked line by line, BOM and CRLF accepted
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    text = rec["text"]
                    doc_id = rec.get("id")
                    doc_id = str(n) if doc_id is None else str(doc_id)
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
                    raise InputError(f"{path}, line {n}: not a JSON object with a 'text' field "
                                     f"({type(err).__name__}: {str(err)[:100]})") from None
                if not isinstance(text, str):
                    raise InputError(f"{path}, line {n}, document {doc_id}: 'text' is not a string")
                if _lone_surrogate(text + doc_id):  # a "\ud800" escape: no valid Unicode text
                    raise InputError(f"{path}, line {n}, document {doc_id!r}: a lone surrogate "
                                     f"({_lone_surrogate(text + doc_id)}) is not valid Unicode text")
                docs.append(Document(doc_id, [Passage(0, text, "text")], []))
        else:
            # The text as it is in the file (a BOM is not text): offsets count its CRLFs.
            with open(path, encoding="utf-8-sig", newline="") as f:
                text = f.read()
            docs = [Document(path.stem, [Passage(0, text, "text")], [])]
    except CorpusFormatError as err:
        raise InputError(str(err)) from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not docs:
        raise InputError(f"{path}: no documents found")
    return docs


def _lone_surrogate(s: str) -> str | None:
    try:
        s.encode("utf-8")  # fails exactly on lone surrogates
    except UnicodeEncodeError as err:
        return f"U+{ord(s[err.start]):04X}"
    return None


# ----- outputs -----
def write_output(docs: list[Document], entities: list[list[dict]], fmt: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tagged = [Document(d.id, d.passages, [Mention(e["start"], e["end"], e["text"], e["type"]) for e in ents],
                       {k: v for k, v in d.infons.items() if k != "relations"})
              for d, ents in zip(docs, entities)]
    if fmt == "pubtator":
        from dataset_scripts.pubtator import write_pubtator

        write_pubtator(tagged, tmp)
    elif fmt == "bioc-xml":
        from dataset_scripts.bioc_io import write_bioc_xml

        write_bioc_xml(tagged, tmp)
    elif fmt == "bioc-json":
        from dataset_scripts.bioc_io import write_bioc_json

        write_bioc_json(tagged, tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as f:
            for d, ents in zip(docs, entities):
                f.write(json.dumps({"id": d.id, "text": d.text, "entities": ents}, ensure_ascii=False) + "\n")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)  # the output appears complete or not at all


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


def read_parts(out: Path, keys: dict[int, str] | None = None) -> dict[int, list]:
    """Finished chunks recorded by any process whose key matches ``keys`` (when given).

    Torn lines (a killed writer) and records of other chunkings or inputs are ignored.
    """
    done = {}
    for part in out.parent.glob(out.name + ".part*"):
        with open(part, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    chunk, entities = rec["chunk"], rec["entities"]
                    if keys is None or (keys.get(chunk) is not None and rec.get("key") == keys[chunk]
                                        and rec.get("docs") == len(entities)):
                        done[chunk] = entities
                except (ValueError, KeyError, TypeError):
                    continue
    return done


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


class Tagger:
    """The engine plus the options of a run: task, overlapping passes.

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
                    merged[i].setdefault((e["start"], e["end"], e["type"]), {
                        "start": e["start"], "end": e["end"], "text": e["text"], "type": e["type"],
                        "score": round(e["score"], 4)})
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


def run(args) -> int:
    from accelerate import PartialState

    from aioner.ensemble import load_ensemble
    from aioner.gazetteer import Gazetteer, GazetteerTagger
    from aioner.training import enable_cpu_ranks
    from pipeline_aioner import AIONERTagger

    state = PartialState(cpu=enable_cpu_ranks())  # PartialState alone ignores ACCELERATE_USE_CPU
    try:
        files = expand_inputs(args.inputs)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    models = args.model if isinstance(args.model, list) else [args.model]
    if getattr(args, "allow_pickle", False):  # read by aioner.checkpoint.load_checkpoint
        os.environ["AIONER_ALLOW_PICKLE"] = "1"
    try:
        model, tokenizer = load_ensemble(models, device=state.device)
        gazetteer = Gazetteer.from_tsv(args.gazetteer) if args.gazetteer else None
    except (ValueError, OSError) as err:  # GazetteerError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if args.bf16 else None
    engine = AIONERTagger(model, tokenizer, args.tokens_per_batch, dtype, compile=args.compile)
    if gazetteer is not None:
        engine = GazetteerTagger(engine, gazetteer, args.gazetteer_mode, args.gazetteer_min_score)
    tagger = Tagger(engine, args.task, args.overlapping)  # an untrained task: a ValueError naming the trained ones
    if tagger.skipped and state.is_main_process:
        print(f"--overlapping: skipped the single-type tasks {tagger.skipped}: this model had no training data "
              "for them, so their passes would add noise", file=sys.stderr)
    failures, tagged_docs, start = 0, 0, time.time()
    html_docs = []
    # Parts are reused only by a run with the same settings that decide predictions (see chunk_key);
    # batching and compilation change float rounding only.
    speed_only = ("inputs", "output_dir", "html", "chunk_docs", "tokens_per_batch", "compile")
    run_key = json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in speed_only}, default=str)
    outputs: dict[Path, Path] = {}
    bar = tqdm(total=None, unit="doc", desc="tagging", disable=not state.is_main_process)
    for path in files:
        fmt = args.format or detect_format(path)
        out = out_dir / (path.stem + OUTPUT_SUFFIX[fmt])
        if out in outputs:  # a.txt and a.jsonl, or dir1/a.xml and dir2/a.xml: one would be lost
            if state.is_main_process:
                print(f"error: {path}: its output {out} is that of {outputs[out]} too; rename one of them "
                      "or tag them into different folders", file=sys.stderr)
            failures += 1
            continue
        outputs[out] = path
        if out.exists() and not args.html:
            if state.is_main_process:  # killed between the rename and the clean-up
                for part in out.parent.glob(out.name + ".part*"):
                    part.unlink(missing_ok=True)
            continue  # finished by an earlier run
        problems: list[str] = []
        try:
            docs = read_input(path, fmt, problems)
        except InputError as err:
            if state.is_main_process:
                print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        for p in problems:
            if state.is_main_process:
                print(f"warning: {p}", file=sys.stderr)
        failures += bool(problems)
        if out.exists():  # --html on a finished output: read the predictions back
            done = None
        else:
            size = chunk_size(len(docs), args.chunk_docs, state.num_processes)
            n_chunks = (len(docs) + size - 1) // size
            chunks = [docs[k * size:(k + 1) * size] for k in range(n_chunks)]
            keys = {k: chunk_key(c, run_key) for k, c in enumerate(chunks)}
            done = read_parts(out, keys)
            tagged_docs += sum(len(c) for k, c in enumerate(chunks) if k not in done)  # by all ranks
            for k in range(n_chunks):
                if k in done or k % state.num_processes != state.process_index:
                    continue
                ents = tagger.tag(chunks[k])
                append_part(out, state.process_index, k, ents, keys[k])
                bar.update(len(chunks[k]) * state.num_processes)
            state.wait_for_everyone()
            if state.is_main_process:
                done = read_parts(out, keys)
                entities = [e for k in range(n_chunks) for e in done[k]]
                try:
                    write_output(docs, entities, fmt, out)
                except (CorpusFormatError, OSError) as err:  # the parts stay: a re-run writes again
                    print(f"error: {path}: the tagged output cannot be written ({err})", file=sys.stderr)
                    failures += 1
                else:
                    for part in out.parent.glob(out.name + ".part*"):
                        part.unlink()
            state.wait_for_everyone()
        if args.html and state.is_main_process:
            html_docs += _read_back(out, fmt)
    bar.close()
    if args.html and state.is_main_process:
        from aioner.html_view import render_html

        Path(args.html).write_text(render_html(html_docs), encoding="utf-8")
        print(f"HTML view: {args.html}")
    if state.is_main_process:
        seconds = time.time() - start
        ranks = f" by {state.num_processes} processes" if state.num_processes > 1 else ""
        print(f"tagged {tagged_docs} documents from {len(files)} input(s){ranks} in {seconds:.1f} s"
              + (f"; {failures} input(s) had problems" if failures else ""))
    return 1 if failures else 0


def _read_back(out: Path, fmt: str) -> list[tuple[str, str, list[dict]]]:
    """(id, text, entities) of a finished output, for the HTML view."""
    if fmt in ("jsonl", "text"):
        with open(out, encoding="utf-8") as f:
            return [(r["id"], r["text"], r["entities"]) for r in map(json.loads, f)]
    docs = read_input(out, fmt, [])
    return [(d.id, d.text, [{"start": m.start, "end": m.end, "type": m.type, "text": m.text} for m in d.mentions])
            for d in docs]


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
    ap = argparse.ArgumentParser(prog="aioner-tag", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="files, folders or globs")
    ap.add_argument("--model", required=True, nargs="+",
                    help="checkpoint folder or Hub id; several: an ensemble (emissions averaged, one decoding)")
    ap.add_argument("--gazetteer", help="TSV of term<TAB>type[<TAB>id] applied after the model (aioner/gazetteer.py)")
    ap.add_argument("--gazetteer_mode", choices=["recall", "precision", "both"], default="precision",
                    help="precision (default): drop predictions the dictionary does not support, below "
                         "--gazetteer_min_score; recall: add missed dictionary matches; both. Measured on BioRED "
                         "test (results/seed3.json, a BioRED-train gazetteer): precision below 0.9 +1.38 F1, "
                         "recall +0.56, precision or both with min score 1.0 -20.2 / -18.0")
    ap.add_argument("--gazetteer_min_score", type=float, default=0.9,
                    help="precision/both modes drop unsupported predictions only below this confidence "
                         "(default 0.9, the best measured; 1.0 drops every unsupported one)")
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--task", default="ALL", help="ALL or one entity type the model knows")
    ap.add_argument("--format", choices=FORMATS, help="input format (default: from extension or content)")
    ap.add_argument("--overlapping", nargs="?", const="nested", choices=["nested", "union"],
                    help="also run one pass per single type: 'nested' (the default) adds the entities that nest "
                         "in, or hold, another type's to the --task output; 'union' returns every pass's entities")
    ap.add_argument("--html", help="also write a self-contained HTML view of the tagged documents here")
    ap.add_argument("--tokens_per_batch", type=int, help="padded sub-words per forward batch (default: 2048 on CPU, 16384 on GPU)")
    ap.add_argument("--chunk_docs", type=int, default=256, help="documents per resumable chunk")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU, or CPUs with native bf16)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the model (one-off 20-60 s per process; 3-6%% faster on a 2-core CPU: "
                         "for large jobs)")
    ap.add_argument("--allow_pickle", action="store_true",
                    help="also load checkpoints whose weights are pickle files (pytorch_model.bin); default: "
                         "safetensors only, since unpickling can run code")
    args = ap.parse_args(explicit_overlapping_mode(sys.argv[1:] if argv is None else [str(a) for a in argv]))
    try:
        return run(args)
    except ValueError as err:  # unknown task and other usage errors
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

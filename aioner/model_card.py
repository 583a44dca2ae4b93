"""Model cards from the templates in ``aioner/templates/``, with model-index YAML of the measured scores."""

from __future__ import annotations

import platform
from importlib import resources
from pathlib import Path
from string import Template

import yaml

from aioner.atomic_files import write_text

# Package data, so that an installed (not editable) package writes cards too.
TEMPLATE = resources.files("aioner") / "templates" / "aioner_model_card.md"


def model_index(name: str, results: list[dict]) -> list[dict]:
    """Hub model-index entries: overall and per-type strict P/R/F1 for each evaluated test set."""
    entries = []
    for r in results:
        strict = r["strict"]
        metrics = [
            {"type": k, "value": round(strict["overall"][k], 4), "name": f"overall {k} (strict)"}
            for k in ("precision", "recall", "f1")
        ]
        metrics.append({"type": "f1", "value": round(r["relaxed"]["overall"]["f1"], 4), "name": "overall f1 (relaxed)"})
        for t, s in strict["per_type"].items():
            metrics += [
                {"type": k, "value": round(s[k], 4), "name": f"{t} {k} (strict)"} for k in ("precision", "recall", "f1")
            ]
        entries.append(
            {
                "task": {"type": "token-classification", "name": "Named Entity Recognition"},
                "dataset": {"name": r["corpus"], "type": r["corpus"], "split": r["split"]},
                "metrics": metrics,
            }
        )
    return [{"name": name, "results": entries}]


def results_table(results: list[dict]) -> str:
    if not results:
        return "No test set was evaluated for this checkpoint."
    lines = ["| test set | task | type | P | R | F1 (strict) | F1 (relaxed) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        rows = [("overall", r["strict"]["overall"], r["relaxed"]["overall"])]
        rows += [(t, s, r["relaxed"]["per_type"].get(t, {"f1": 0.0})) for t, s in r["strict"]["per_type"].items()]
        for name, s, rel in rows:
            lines.append(
                f"| {r['corpus']} {r['split']} | {r['task']} | {name} | {100 * s['precision']:.2f} | "
                f"{100 * s['recall']:.2f} | {100 * s['f1']:.2f} | {100 * rel['f1']:.2f} |"
            )
    return "\n".join(lines)


def trained_tasks_text(record: dict | None) -> str:
    """The card's list of what training saw per task (the config's ``trained_tasks``)."""
    if record is None:
        return "Trained tasks: not recorded."
    lines = ["Trained tasks (the tagger refuses the others: their tags never saw a training sentence):", ""]
    for task, entry in record.items():
        mentions = ", ".join(f"{t} {n}" for t, n in sorted(entry["mentions"].items())) or "no mentions"
        lines.append(f"- `{task}`: {entry['sentences']} sentences; mentions: {mentions}")
    return "\n".join(lines)


def write_model_card(out: Path, info: dict, results: list[dict]) -> Path:
    """``info``: model_id, recipe, recipe_desc, encoder, base_model (Hub id or None), tasks, decoder,
    training_data, hyperparameters, command, dev_f1, train_seconds, datasets, trained_tasks (optional)."""
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "token-classification",
        "language": ["en"],
        "license": "mit",
        "tags": ["biomedical", "named-entity-recognition", "aioner", "custom_code"],
        "datasets": info.get("datasets", []),
        "model-index": model_index(info["model_id"], results),
    }
    if info.get("base_model"):
        metadata["base_model"] = info["base_model"]
    small = "MiniLM" in info["encoder"]
    text = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        metadata=yaml.safe_dump(metadata, sort_keys=False).strip(),
        title=f"AIONER ({info['recipe']}, {info['encoder']})",
        model_id=info["model_id"],
        encoder=info["encoder"],
        encoder_desc=f"encoder `{info['encoder']}`",
        decoder_desc="CRF" if info["decoder"] == "crf" else "softmax",
        tasks=", ".join(f"`{t}` ({', '.join(types)})" for t, types in info["tasks"].items()),
        trained_tasks=trained_tasks_text(info.get("trained_tasks")),
        recipe=info["recipe"],
        recipe_desc=info["recipe_desc"],
        training_data=info["training_data"],
        hyperparameters=info["hyperparameters"],
        command=info["command"],
        dev_f1=f"{100 * info['dev_f1']:.2f}" if info.get("dev_f1") is not None else "n/a",
        train_time=f"{info.get('train_seconds', 0) / 60:.1f} min",
        machine=f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        results_table=results_table(results),
        encoder_limitations=(
            "The encoder is all-MiniLM-L6-v2, a small general-domain sentence encoder: the "
            "paper's PubMedBERT/Bioformer encoders score several F1 points higher."
            if small
            else f"Encoder: {info['encoder']}."
        ),
    )
    path = Path(out) / "README.md"
    write_text(path, text)
    return path


def add_results(card: Path, results: list[dict], model_id: str | None = None) -> Path:
    """Put test scores measured after training (e.g. by benchmarks/reproduce.py) into an existing
    card: its model-index and its evaluation table. Other text is kept."""
    card = Path(card)
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise ValueError(f"{card}: no YAML front matter (--- ... ---) to put the model-index in")
    head, body = text[4:].split("\n---\n", 1)
    metadata = yaml.safe_load(head) or {}
    name = model_id or (metadata.get("model-index") or [{}])[0].get("name") or card.parent.name
    metadata["model-index"] = model_index(name, results)
    metadata["datasets"] = sorted(set(metadata.get("datasets") or []) | {r["corpus"] for r in results})
    start, end = body.find("## Evaluation"), body.find("## Limitations")
    if start >= 0 and end > start:
        intro = body[start:end].split("\n\n")[:2]  # the heading and the paragraph on the scoring
        body = body[:start] + "\n\n".join(intro) + "\n\n" + results_table(results) + "\n\n" + body[end:]
    # Read, changed and written back: a write stopped halfway would lose the card, so it is atomic.
    write_text(card, "---\n" + yaml.safe_dump(metadata, sort_keys=False).strip() + "\n---\n" + body)
    return card


# ----- the card of an encoder after domain-adaptive pre-training (aioner/mlm.py) -----
def _mlm_corpus_table(corpora: list[dict]) -> str:
    """One row per corpus: the file read (with its hash) and where each of its documents went."""
    rows = [
        "| corpus | file (SHA-256) | split read | documents in split | left out: test ids | left out: "
        "duplicates | held out (loss only) | trained on | sentences | sub-words |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in corpora:
        if c["skipped"]:
            rows.append(
                f"| {c['corpus']} | {c['file'] or '—'} | — | — | — | — | — | 0 (skipped: "
                f"{c['skipped'].splitlines()[0][:120]}) | — | — |"
            )
            continue
        split = "train" + (
            f" less the fixed dev hold-out ({c['dev_held_out']} documents, never read)" if c["dev_held_out"] else ""
        )
        if c["not_sampled"]:
            split += f"; sample, {c['not_sampled']} not drawn"
        rows.append(
            f"| {c['corpus']} | `{c['file']}` (`{c['sha256'][:16]}…`) | {split} | {c['documents_in_split']} | "
            f"{c['excluded_test_ids']} | {c['duplicates']} | {c['heldout_documents']} | {c['documents_used']} | "
            f"{c['sentences']} | {c['tokens']} |"
        )
    return "\n".join(rows)


def _mlm_head_text(record: dict) -> str:
    init = record["initialised_weights"]
    if not init:
        return "The encoder's own MLM head was continued."
    return (
        f"The encoder had no MLM head: {len(init)} weights were initialised here "
        f"({', '.join(init[:6])}{' …' if len(init) > 6 else ''}); the output layer is "
        f"{'tied to' if record['decoder_tied_to_embeddings'] else 'NOT tied to'} the input embeddings."
    )


def _fields(source: dict, *names: str) -> dict:
    """The template fields that are copied as they are from the training record: ``{name: source[name]}``."""
    return {name: source[name] for name in names}


def write_mlm_model_card(out: Path, record: dict, model_id: str) -> Path:
    """README.md of an adapted encoder, from its training record (``mlm_training.json``): what the
    encoder is, exactly what text it saw, how it was trained, how to use it."""
    o, d = record["options"], record["data"]
    base = record.get("base_model")
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "fill-mask",
        "language": ["en"],
        "tags": ["biomedical", "domain-adaptive-pretraining", "masked-language-modeling", "aioner"],
    }
    if base:
        metadata["base_model"] = base
    if record.get("license"):
        metadata["license"] = record["license"]
    hist = record["history"]
    first, last = (hist[0], hist[-1]) if hist else ({}, {})

    def loss(x):
        return "—" if x is None else f"{x:.4f}"

    template = resources.files("aioner") / "templates" / "mlm_model_card.md"
    text = Template(template.read_text(encoding="utf-8")).substitute(
        metadata=yaml.safe_dump(metadata, sort_keys=False).strip(),
        model_id=model_id,
        encoder_desc=f"`{record['encoder']}`" + (f" ({base})" if base else ""),
        corpora_read=len([c for c in d["corpora"] if not c["skipped"]]),
        tests_of=("any registered corpus" if o.get("exclude_tests_of") is None else ", ".join(o["exclude_tests_of"])),
        test_files_read=", ".join(f"`{t}`" for t in d["test_files_read"]),
        test_files_missing=(
            f"; not available here, so not checked: {', '.join(d['test_files_missing'])}"
            if d["test_files_missing"]
            else ""
        ),
        corpus_table=_mlm_corpus_table(d["corpora"]),
        **_fields(d, "test_ids", "documents", "heldout_documents", "tokens", "sequences", "heldout_sequences_scored"),
        **_fields(record, "steps", "train_tokens", "epochs_seen", "train_seconds", "train_tokens_per_s", "machine"),
        **_fields(o, "seq_length", "batch_size", "grad_accum", "mlm_probability", "learning_rate"),
        **_fields(o, "weight_decay", "max_grad_norm", "seed", "command"),
        masking=(
            "whole-word masking (every sub-word of a chosen word replaced by the mask token)"
            if o["whole_word_mask"]
            else "sub-word masking (80% mask token, 10% random, 10% unchanged)"
        ),
        warmup=f"{o['warmup_ratio']:.0%}",
        decay_budget=f" over the {o['max_seconds']} s budget" if o["max_seconds"] else "",
        head_warmup=(
            f"; the first {o['head_warmup_steps']} steps trained only the new head (encoder at learning rate 0)"
            if o.get("head_warmup_steps")
            else ""
        ),
        head=_mlm_head_text(record),
        first_loss=loss(first.get("loss")),
        first_step=first.get("step", "—"),
        last_loss=loss(last.get("loss")),
        last_step=last.get("step", "—"),
        heldout_before=loss(record.get("heldout_loss_before")),
        heldout_after=loss(record.get("heldout_loss_after")),
    )
    path = Path(out) / "README.md"
    write_text(path, text)
    return path

"""Model cards from the template in ``model_cards/``, with model-index YAML of the measured scores."""

from __future__ import annotations

import platform
from pathlib import Path
from string import Template

import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "model_cards" / "aioner_model_card.md"


def model_index(name: str, results: list[dict]) -> list[dict]:
    """Hub model-index entries: overall and per-type strict P/R/F1 for each evaluated test set."""
    entries = []
    for r in results:
        strict = r["strict"]
        metrics = [{"type": k, "value": round(strict["overall"][k], 4), "name": f"overall {k} (strict)"}
                   for k in ("precision", "recall", "f1")]
        metrics.append({"type": "f1", "value": round(r["relaxed"]["overall"]["f1"], 4), "name": "overall f1 (relaxed)"})
        for t, s in strict["per_type"].items():
            metrics += [{"type": k, "value": round(s[k], 4), "name": f"{t} {k} (strict)"}
                        for k in ("precision", "recall", "f1")]
        entries.append({
            "task": {"type": "token-classification", "name": "Named Entity Recognition"},
            "dataset": {"name": r["corpus"], "type": r["corpus"], "split": r["split"]},
            "metrics": metrics,
        })
    return [{"name": name, "results": entries}]


def results_table(results: list[dict]) -> str:
    if not results:
        return "No test set was evaluated for this checkpoint."
    lines = ["| test set | task | type | P | R | F1 (strict) | F1 (relaxed) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        rows = [("overall", r["strict"]["overall"], r["relaxed"]["overall"])]
        rows += [(t, s, r["relaxed"]["per_type"].get(t, {"f1": 0.0})) for t, s in r["strict"]["per_type"].items()]
        for name, s, rel in rows:
            lines.append(f"| {r['corpus']} {r['split']} | {r['task']} | {name} | {100 * s['precision']:.2f} | "
                         f"{100 * s['recall']:.2f} | {100 * s['f1']:.2f} | {100 * rel['f1']:.2f} |")
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
        "library_name": "transformers", "pipeline_tag": "token-classification", "language": ["en"],
        "license": "mit", "tags": ["biomedical", "named-entity-recognition", "aioner", "custom_code"],
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
        recipe=info["recipe"], recipe_desc=info["recipe_desc"],
        training_data=info["training_data"], hyperparameters=info["hyperparameters"],
        command=info["command"],
        dev_f1=f"{100 * info['dev_f1']:.2f}" if info.get("dev_f1") is not None else "n/a",
        train_time=f"{info.get('train_seconds', 0) / 60:.1f} min",
        machine=f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        results_table=results_table(results),
        encoder_limitations=("The encoder is all-MiniLM-L6-v2, a small general-domain sentence encoder: the "
                             "paper's PubMedBERT/Bioformer encoders score several F1 points higher."
                             if small else f"Encoder: {info['encoder']}."),
    )
    path = Path(out) / "README.md"
    path.write_text(text, encoding="utf-8")
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
    card.write_text("---\n" + yaml.safe_dump(metadata, sort_keys=False).strip() + "\n---\n" + body, encoding="utf-8")
    return card

"""Model cards: written from the template with model-index YAML, and updated with later test scores."""

import yaml

from aioner.model_card import add_results, write_model_card


def result(f1):
    s = {"precision": f1, "recall": f1, "f1": f1}
    return {
        "corpus": "BioRED",
        "split": "test",
        "task": "ALL",
        "strict": {"overall": s, "per_type": {"Gene": s}},
        "relaxed": {"overall": s, "per_type": {"Gene": s}},
    }


def front_matter(path):
    return yaml.safe_load(path.read_text().split("---\n")[1])


def test_card_gets_model_index_and_later_scores(tmp_path):
    info = {
        "model_id": "org/aioner-test",
        "recipe": "single",
        "recipe_desc": "BioRED only",
        "encoder": "embedded:all-MiniLM-L6-v2",
        "tasks": {"ALL": ["Gene"]},
        "decoder": "crf",
        "training_data": "n",
        "hyperparameters": "h",
        "command": "python train.py",
        "dev_f1": 0.5,
        "train_seconds": 60,
        "datasets": [],
    }
    card = write_model_card(tmp_path, info, [])
    assert "No test set was evaluated" in card.read_text()
    assert front_matter(card)["model-index"][0]["results"] == []
    add_results(card, [result(0.7234)])
    meta, text = front_matter(card), card.read_text()
    assert meta["model-index"][0]["name"] == "org/aioner-test"
    metrics = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics["overall f1 (strict)"] == 0.7234 and metrics["Gene f1 (strict)"] == 0.7234
    assert meta["datasets"] == ["BioRED"]
    assert "No test set was evaluated" not in text and "| BioRED test | ALL | overall | 72.34 |" in text
    assert "## Limitations" in text and "## Use" in text  # the rest of the card is kept
    add_results(card, [result(0.8)])  # again: replaced, not appended
    assert card.read_text().count("| BioRED test | ALL | overall |") == 1

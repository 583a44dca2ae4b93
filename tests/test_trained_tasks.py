"""A checkpoint records the tasks it was trained on (issue 15); taggers refuse the others."""

import json
import subprocess
import sys
import warnings

import pytest
from conftest import REPO, tiny_tagger
from test_training import train_few_steps


def test_training_record_counts_sentences_and_mentions_per_task():
    from aioner_scheme import training_record

    names = ["O-Disease", "B-Disease", "I-Disease", "O-ALL", "B-Gene", "I-Gene"]
    rows = [
        {"task": "Disease", "labels": [0, 1, 2, 0, 1]},
        {"task": "Disease", "labels": [0, 0]},
        {"task": "ALL", "labels": [4, 5, 3, 1]},
    ]
    assert training_record(rows, names) == {
        "Disease": {"sentences": 2, "mentions": {"Disease": 2}},
        "ALL": {"sentences": 1, "mentions": {"Gene": 1, "Disease": 1}},
    }


@pytest.fixture(scope="module")
def disease_only(tiny_encoder, tmp_path_factory):
    """An AIO model (all six single-type tags and ALL) trained a few steps on NCBI-Disease alone."""
    out = tmp_path_factory.mktemp("disease") / "model"
    train_few_steps("aioner", ["NCBI-Disease"], out, tiny_encoder, max_steps=2)
    return out


def test_checkpoint_records_what_training_saw(disease_only):
    config = json.loads((disease_only / "config.json").read_text())
    assert "CellLine" in dict(config["tasks"])  # the tag exists...
    record = config["trained_tasks"]
    assert list(record) == ["Disease"]  # ...but only the Disease task had rows
    assert record["Disease"]["sentences"] > 0 and set(record["Disease"]["mentions"]) == {"Disease"}
    card = (disease_only / "README.md").read_text()
    assert "Trained tasks" in card and f"`Disease`: {record['Disease']['sentences']} sentences" in card


def test_pipeline_refuses_an_untrained_task_and_names_the_trained_ones(disease_only):
    from aioner.checkpoint import load_checkpoint
    from aioner_scheme import UntrainedTaskError
    from pipeline_aioner import AIONERTagger

    tagger = AIONERTagger(*load_checkpoint(str(disease_only)))
    text = "Hereditary breast cancer in HeLa cells."
    assert isinstance(tagger.tag([text], "Disease")[0], list)
    with pytest.raises(UntrainedTaskError, match=r"'CellLine'.*\['Disease'\]"):
        tagger.tag([text], "CellLine")
    with pytest.raises(UntrainedTaskError, match="Disease"):
        tagger.tag([text], "ALL")


def test_overlapping_runs_no_untrained_pass(disease_only, tmp_path):
    from aioner.checkpoint import load_checkpoint
    from aioner.tagging import DocumentTagger
    from pipeline_aioner import AIONERTagger

    tagger = DocumentTagger(AIONERTagger(*load_checkpoint(str(disease_only))), "Disease", "nested")
    assert tagger.tasks == ["Disease"]
    assert set(tagger.skipped) == {"Gene", "Chemical", "Species", "Variant", "CellLine"}
    (tmp_path / "in.txt").write_text("Hereditary breast cancer in HeLa cells.\n")
    cli = [
        sys.executable,
        "-m",
        "aioner.tagging",
        str(tmp_path / "in.txt"),
        "--model",
        str(disease_only),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    res = subprocess.run(cli + ["--task", "Disease", "--overlapping"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipped the single-type tasks" in res.stderr and "CellLine" in res.stderr
    refused = subprocess.run(cli + ["--task", "CellLine"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "trained on the tasks ['Disease']" in refused.stderr


def test_a_checkpoint_without_the_record_warns_and_tags_every_task():
    from pipeline_aioner import AIONERTagger

    model, tokenizer = tiny_tagger(trained=False)
    assert model.config.trained_tasks is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tagger = AIONERTagger(model, tokenizer)
    assert any("does not record which tasks" in str(w.message) for w in caught)
    assert isinstance(tagger.tag(["HeLa cells."], "CellLine")[0], list)


def test_an_ensemble_answers_the_tasks_every_member_was_trained_on():
    from aioner.ensemble import AIONEREnsemble

    a, _ = tiny_tagger(seed=0)
    b, _ = tiny_tagger(seed=1)
    a.config.trained_tasks = {"Gene": {"sentences": 3, "mentions": {}}, "ALL": {"sentences": 5, "mentions": {}}}
    b.config.trained_tasks = {"ALL": {"sentences": 2, "mentions": {}}}
    ensemble = AIONEREnsemble([a, b])
    assert list(ensemble.config.trained_tasks) == ["ALL"] and "Gene" in a.config.trained_tasks


def test_gazetteer_default_is_the_best_measured_mode_and_help_says_so():
    import inspect

    from aioner.gazetteer import GazetteerTagger

    defaults = inspect.signature(GazetteerTagger).parameters
    assert defaults["mode"].default == "precision" and defaults["min_score"].default == 0.9
    res = subprocess.run([sys.executable, "-m", "aioner.tagging", "--help"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and "+1.38" in res.stdout and "-18.0" in res.stdout

"""train.py recipes on tiny data with a tiny random encoder: what each recipe must do, resume, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO

from aioner.testing import train_args
from dataset_scripts.corpora import get_corpus

TRAIN = [sys.executable, str(REPO / "train.py")]


def train(*args, check=True, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(
        TRAIN + [str(a) for a in args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(f"train.py failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


@pytest.fixture(scope="session")
def single_run(tiny_encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "single"
    train(*train_args("single", ["BioRED"], out, sample=12, epochs=2, encoder=tiny_encoder, batch_size=16))
    return out


def train_few_steps(recipe: str, corpora: list[str], out, encoder: str, max_steps: int):
    """``max_steps`` steps of ``recipe`` on 6 documents a corpus, batches of 8, with ``encoder``, then test."""
    options = dict(sample=6, epochs=1, max_steps=max_steps, batch_size=8, encoder=encoder, eval_test=True)
    return train(*train_args(recipe, corpora, out, **options))


def test_single_recipe_trains_saves_scores_and_writes_a_card(single_run):
    files = {p.name for p in single_run.iterdir()}
    assert {"model.safetensors", "modeling_aioner.py", "pipeline_aioner.py", "README.md", "results.json"} <= files
    results = json.loads((single_run / "results.json").read_text())
    assert results["test"][0]["corpus"] == "BioRED" and results["test"][0]["documents"] == 100
    assert len(results["history"]) == 2
    card = (single_run / "README.md").read_text()
    assert "model-index:" in card and "BioRED" in card and "--recipe single" in card
    assert len(list((single_run / "train_state").glob("step_*"))) == 1  # rotated, one kept
    assert list((single_run / "runs").rglob("events.out.tfevents*"))  # TensorBoard


def test_resume_refuses_other_training_windows(single_run, tiny_encoder, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(single_run, out)
    (progress,) = (out / "train_state").glob("step_*/progress.json")
    saved = json.loads(progress.read_text())
    assert saved["train_data"]["windows"] > 0 and len(saved["train_data"]["sha256"]) == 16
    # as if the corpora or the word splitting had changed since the state was saved
    progress.write_text(json.dumps({**saved, "train_data": {**saved["train_data"], "sha256": "0" * 16}}))
    args = train_args("single", ["BioRED"], out, sample=12, epochs=2, encoder=tiny_encoder, batch_size=16)
    res = train(*args, "--resume_from_checkpoint", "latest", check=False)
    assert res.returncode != 0 and "changed since" in res.stderr and "windows (digest 0000000000000000)" in res.stderr
    assert json.loads(progress.read_text())["train_data"]["sha256"] == "0" * 16  # nothing touched


def test_checkpoint_loads_in_a_fresh_pipeline(single_run):
    from conftest import run_python

    out = run_python(f"""
from transformers import pipeline
p = pipeline("token-classification", model={str(single_run)!r}, trust_remote_code=True)
text = "Mutations in BRCA1 cause breast cancer."
print(all(text[e["start"]:e["end"]] == e["text"] for e in p(text)))
""")
    assert out.strip().endswith("True")


def test_seed_fixes_the_new_layers_and_so_the_whole_run(tiny_encoder, tmp_path, monkeypatch):
    """Same --seed, same weights, bit for bit, even under another string-hash seed; another --seed, another
    start for the layers train.py adds (dense, classifier, CRF): they were once drawn before the seed was set."""
    from safetensors.torch import load_file

    def weights(name, seed, hash_seed):
        monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
        out = tmp_path / name
        options = dict(sample=6, epochs=1, max_steps=1, batch_size=8, encoder=tiny_encoder, seed=seed)
        train(*train_args("single", ["BioRED"], out, **options))
        return load_file(str(out / "model.safetensors"))

    first, again, other = weights("a", 0, "1"), weights("b", 0, "2"), weights("c", 1, "1")
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    for name in ("crf.transitions", "classifier.weight", "fc.weight"):
        assert not torch.equal(first[name], other[name]), name


@pytest.mark.parametrize(
    "dev_f1, epochs_run",
    [([0.0, 0.0, 0.0, 0.0, 0.3, 0.2], 6), ([0.1, 0.0, 0.0, 0.0, 0.3], 3), ([0.0, 0.2, 0.2, 0.2, 0.3], 4)],
)
def test_patience_counts_from_the_first_entity_on_dev(dev_f1, epochs_run, tmp_path, monkeypatch):
    """patience 2: epochs at dev F1 0 before any entity is found do not count (a small corpus takes a few
    epochs to find its first one; stopping there keeps a model that learnt nothing); later ones do."""
    from accelerate import Accelerator

    import aioner.training as training

    scores = iter(dev_f1)
    monkeypatch.setattr(training, "evaluate_features", lambda *a, **k: {"overall": {"f1": next(scores)}})
    monkeypatch.setattr(training, "save_best", lambda *a, **k: None)
    args = training.TrainArgs(output_dir=str(tmp_path), patience=2)
    progress = {"epoch": 0, "global_step": 0, "best_f1": -1.0, "bad_epochs": 0, "history": []}
    accelerator, model = Accelerator(cpu=True), torch.nn.Linear(1, 1)
    for epoch in range(len(dev_f1)):
        progress["epoch"] = epoch
        training.end_epoch(accelerator, model, None, tmp_path, progress, (["dev"], None, 0), args, 1, 1.0)
        if progress["bad_epochs"] >= args.patience:  # fit's rule
            break
    assert len(progress["history"]) == epochs_run


def test_finetune_keeps_encoder_and_reinitialises_the_output_layer(single_run, tmp_path):
    from aioner.checkpoint import load_checkpoint

    base, _ = load_checkpoint(str(single_run))
    out = tmp_path / "ft"
    options = dict(init_from=single_run, sample=30, epochs=1, max_steps=1, learning_rate=0.0, head_learning_rate=0.0)
    train(*train_args("finetune", ["AnEM"], out, **options, eval_test=True))
    tuned, tok = load_checkpoint(str(out))
    # The new task is the corpus' eleven types, in the registry's order.
    assert tuned.config.scheme.tasks == {"AnEM": get_corpus("AnEM").entity_types}
    assert tok.convert_tokens_to_ids("<AnEM>") != tok.unk_token_id
    old, new = base.state_dict(), tuned.state_dict()
    for name, value in old.items():
        if name.startswith("encoder.") and "word_embeddings" not in name or name.startswith("fc."):
            torch.testing.assert_close(new[name], value, msg=name)  # lr 0: kept exactly
    emb = "encoder.embeddings.word_embeddings.weight"
    torch.testing.assert_close(new[emb][: old[emb].shape[0]], old[emb])  # old rows kept, new tag rows added
    assert new["classifier.weight"].shape[0] == 23 != old["classifier.weight"].shape[0]
    assert "crf.transitions" in new and new["crf.transitions"].shape == (23, 23)


def test_gerbera_runs_both_stages_and_ends_with_target_labels_only(tiny_encoder, tmp_path):
    out = tmp_path / "gerbera"
    options = dict(general="CoNLL-2003", general_sample=60, sample=10, epochs=1, encoder=tiny_encoder)
    res = train(*train_args("gerbera", ["NCBI-Disease"], out, **options, eval_test=True))
    assert "GERBERA stage 1" in res.stdout and "stage 2" in res.stdout
    stage1 = json.loads((out / "stage1" / "config.json").read_text())
    final = json.loads((out / "config.json").read_text())
    assert "B-PER" in stage1["label2id"] and "O-CoNLL2003" in stage1["label2id"]
    assert "B-PER" not in final["label2id"] and "B-Disease" in final["label2id"]
    # The training seconds count both stages, not only the target stage in results.json's history.
    stages = [json.loads(line)["train_seconds"] for f in (out / "stage1", out) for line in open(f / "train_log.jsonl")]
    results = json.loads((out / "results.json").read_text())
    assert len(stages) == 2 and results["train_seconds"] == pytest.approx(sum(stages), abs=0.2)


def test_merged_recipe_adds_the_new_types_to_the_aio_labels(tiny_encoder, tmp_path):
    out = tmp_path / "merged"
    train(*train_args("merged", ["AnatEM"], out, sample=3, epochs=1, max_steps=2, encoder=tiny_encoder, eval_test=True))
    labels = json.loads((out / "config.json").read_text())["label2id"]
    assert {"B-Gene", "O-ALL", "B-Anatomy", "O-AnatEM"} <= set(labels) and len(labels) == 22


def test_kill_9_then_resume_continues_from_the_saved_step(tiny_encoder, tmp_path):
    out = tmp_path / "resume"
    options = dict(sample=40, epochs=2, batch_size=8, save_steps=3, encoder=tiny_encoder, eval_test=True)
    args = TRAIN + train_args("single", ["BioRED"], out, **options)
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not list((out / "train_state").glob("step_*/progress.json")):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = [json.loads(p.read_text()) for p in (out / "train_state").glob("step_*/progress.json")]
    assert saved, "no state was saved before the kill"
    step = max(s["global_step"] for s in saved)
    assert step < 2 * 40  # killed mid-run
    res = train(*args[2:-2], "--output_dir", out, "--resume_from_checkpoint", "latest")
    assert "resumed from" in res.stdout and f"step {step}" in res.stdout
    final = json.loads(
        max(
            (out / "train_state").glob("step_*/progress.json"), key=lambda p: int(p.parent.name.split("_")[1])
        ).read_text()
    )
    assert final["epoch"] == 2 and final["global_step"] > step
    # The epoch cut by the kill keeps what it trained before its checkpoint: both epochs count the
    # same training set's tokens, each batch once (steps redone after the checkpoint are not doubled).
    epochs = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[0]["train_tokens"] == epochs[1]["train_tokens"] > 0
    assert final["train_tokens"] == 2 * epochs[1]["train_tokens"]
    assert (out / "model.safetensors").exists()
    # results.json's training seconds cover both processes, not just the resumed one's wall time.
    results = json.loads((out / "results.json").read_text())
    assert results["train_seconds"] == pytest.approx(sum(e["train_seconds"] for e in epochs), abs=0.2)


def test_bad_inputs_are_clear_and_overwrite_nothing(single_run, tmp_path):
    res = train("--recipe", "single", "--corpora", "NoSuchCorpus", "--output_dir", tmp_path / "x", check=False)
    assert res.returncode != 0 and "unknown corpus 'NoSuchCorpus'" in res.stderr
    before = (single_run / "model.safetensors").stat().st_mtime_ns
    res = train("--recipe", "single", "--corpora", "BioRED", "--sample", 2, "--output_dir", single_run, check=False)
    assert res.returncode != 0 and "already holds a training run" in res.stderr
    assert (single_run / "model.safetensors").stat().st_mtime_ns == before
    res = train(
        "--recipe",
        "finetune",
        "--init_from",
        single_run,
        "--corpora",
        "BioRED",
        "--output_dir",
        tmp_path / "y",
        check=False,
    )
    assert res.returncode != 0 and "already has the types" in res.stderr
    res = train("--recipe", "finetune", "--corpora", "AnEM", "--output_dir", tmp_path / "z", check=False)
    assert res.returncode != 0 and "needs --init_from" in res.stderr


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"],
    # On a machine without a GPU, --multi_gpu is what gives two real (gloo) ranks; --cpu starts one process.
    "accelerate": [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        "29534",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_machines",
        "1",
    ],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_synchronise_gradients(tiny_encoder, tmp_path, launcher):
    """Two real ranks (gloo on CPU); both end with identical weights and the result loads."""
    out = tmp_path / "ddp"
    options = dict(sample=8, epochs=1, batch_size=8, encoder=tiny_encoder, eval_test=True)
    cmd = LAUNCHERS[launcher] + [str(REPO / "train.py"), *train_args("single", ["BioRED"], out, **options)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "parameter sums equal on 2 ranks" in res.stdout + res.stderr
    from aioner.checkpoint import load_checkpoint

    model, _ = load_checkpoint(str(out))
    assert model.config.num_labels == 19


def test_push_to_hub_goes_as_far_as_the_network(single_run, monkeypatch):
    """Offline, the upload of checkpoint and card stops exactly at the Hub call."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    import train as train_script

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineModeIsEnabled):
        train_script.push(single_run, "aioner-test/never-created")


def test_push_uploads_the_checkpoint_without_training_state_or_logs(single_run, monkeypatch):
    """What push hands the Hub, filtered by huggingface_hub's own pattern matching."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    import train as train_script

    calls = {}

    class RecordingApi:
        def create_repo(self, repo_id, exist_ok=False):
            calls["repo"] = repo_id

        def upload_folder(self, folder_path, repo_id, ignore_patterns):
            files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
            calls["files"] = set(filter_repo_objects(files, ignore_patterns=ignore_patterns))

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    train_script.push(single_run, "aioner-test/recorded")
    assert calls["repo"] == "aioner-test/recorded"
    assert {"config.json", "model.safetensors", "modeling_aioner.py", "README.md"} <= calls["files"]
    assert not [f for f in calls["files"] if f.split("/")[0] in ("train_state", "runs", "stage1", ".best.tmp")]
    assert list((single_run / "train_state").glob("step_*"))  # there was state to leave out


def test_command_line_beats_yaml_in_every_spelling(tmp_path):
    from train import parse_args

    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 20\nbatch_size: 8\nbf16: true\n")
    for spelling in (["--epochs=3"], ["--epochs", "3"], ["--epoch", "3"]):
        args = parse_args(["--config", str(cfg), *spelling])
        assert args.epochs == 3 and args.batch_size == 8 and args.mixed_precision == "bf16"
    assert parse_args(["--config", str(cfg)]).epochs == 20

"""python -m benchmarks.reproduce: table2 end to end at the smoke scale (a tiny random encoder, two
optimizer steps per model), and every experiment's dry run (the train.py commands it would run)."""

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

TYPES = {"Gene", "Disease", "Chemical", "Species", "Variant", "CellLine"}


@pytest.fixture(scope="module")
def reproduce():
    """The benchmark as a module, for the in-process dry runs."""
    from benchmarks import reproduce

    return reproduce


def run_script(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.reproduce", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        # A hang guard, not a speed target: best_model's smoke run trains six models and took over 600 s
        # on a 2-core CPU shared with a training run.
        timeout=1800,
    )


def smoke_args(experiment: str, encoder: str, tmp_path) -> list:
    """``EXPERIMENT --scale smoke`` with ``encoder``, its runs and results under ``tmp_path``."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    return [experiment, "--scale", "smoke", "--encoder", encoder, "--runs_dir", runs, "--results_dir", results]


def test_table2_smoke_writes_both_systems_per_type_and_the_wilcoxon_test(tiny_encoder, tmp_path):
    args = smoke_args("table2", tiny_encoder, tmp_path)
    res = run_script(*args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert "expected ≤" in res.stdout  # the estimate comes first
    result = json.loads((tmp_path / "results" / "table2_smoke.json").read_text())
    for system, recipe in (("baseline", "--recipe single --corpora BioRED"), ("aioner", "--recipe aioner")):
        entry = result[system]
        assert 0 <= entry["overall_f1"] <= 100
        assert set(entry["per_type_f1"]) >= TYPES  # BioRED test has all six types
        assert recipe in entry["command"] and entry["train_seconds"] > 0 and entry["reused"] is False
    assert {"command", "commands", "machine", "date", "seconds", "scale", "encoder", "paper", "note"} <= set(result)
    assert result["command"].startswith("python -m benchmarks.reproduce table2 --scale smoke")
    assert len(result["commands"]) == 2 and set(result["seconds"]["runs"]) == set(result["commands"])
    assert result["scale"] == "smoke" and result["encoder"] == tiny_encoder
    assert result["paper"]["baseline"]["overall_f1"] == 89.34 and result["paper"]["aioner"]["overall_f1"] == 91.26
    assert 0 <= result["wilcoxon"]["p_value"] <= 1 and result["wilcoxon"]["documents"] == 100
    markdown = (tmp_path / "results" / "table2_smoke.md").read_text()
    assert "| ours: AIONER" in markdown and "| paper: AIONER" in markdown and "Wilcoxon" in markdown

    # A finished run is never retrained: refused without --reuse, reused (and its scores too) with it.
    again = run_script(*args)
    assert again.returncode != 0 and "pass --reuse" in again.stderr
    reused = run_script(*args, "--reuse")
    assert reused.returncode == 0, reused.stderr[-3000:]
    second = json.loads((tmp_path / "results" / "table2_smoke.json").read_text())
    assert second["baseline"]["reused"] and second["aioner"]["overall_f1"] == result["aioner"]["overall_f1"]
    assert "tagging BioRED" not in reused.stdout

    # A prediction cached by other tagging code (words, windows, decoding) is tagged again, and only that one.
    caches = sorted((tmp_path / "runs" / "smoke").glob("*/repro_eval/BioRED.json"))
    assert len(caches) == 2
    stale = json.loads(caches[0].read_text())
    caches[0].write_text(json.dumps({**stale, "tagging_code": "an-older-one"}))
    third = run_script(*args, "--reuse")
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("tagging BioRED test") == 1 and "(cached by other tagging code)" in third.stdout
    assert json.loads(caches[0].read_text())["tagging_code"] == stale["tagging_code"]


RECIPES = {  # experiment -> pieces some dry-run command must contain
    # cpu scale: all of BioRED (Table 2's target) in every system, 10% of each other corpus
    "table2": ["--recipe single --corpora BioRED --epochs", "--recipe aioner --sample 0.1 --corpus_sample BioRED=all"],
    # table3: single-corpus models (10% of a corpus: 10 epochs, early stopping), MTL and AIO, clean and leaky
    "table3": [
        "--recipe aioner",
        "--recipe single --corpora GNormPlus --sample 0.1 --epochs 10 --patience 3",
        "--recipe single --corpora BioID --sample 0.1",
        "--recipe mtl --sample 0.1 --corpus_sample BioRED=all",
        "--recipe mtl --sample 0.1 --corpus_sample BioRED=all --exclude_tests_of BioRED GNormPlus",
        "--recipe aioner --sample 0.1 --exclude_tests_of BioRED GNormPlus",
    ],
    # fig3: the BioRED-capped baselines get the steps of 3 epochs over all 450 abstracts, every epoch run
    "fig3": [
        "--recipe single --corpora BioRED --sample 10 --epochs 135 --patience 135",
        "--recipe single --corpora BioRED --sample 50 --epochs 27 --patience 27",
        "--recipe single --corpora BioRED --sample 100 --epochs 14 --patience 14",
        "--recipe aioner --sample 0.1 --corpus_sample BioRED=10",
        "--corpus_sample BioRED=100",
    ],
    "fig4": [
        "--recipe single --corpora AnatEM",
        "--recipe finetune --corpora AnatEM --init_from",
        "--recipe merged --corpora AnatEM",
        "--recipe aioner",
        "--recipe mtl --sample 0.1 --corpora BioRED",
        "--corpus_sample BioRED=all AnatEM=all --exclude_tests_of AnatEM",
    ],
    "gerbera": [
        "--recipe single --corpora NCBI-Disease",
        "--recipe gerbera --corpora NCBI-Disease --general CoNLL-2003",
        "--recipe mtl --sample 0.1 --corpora NCBI-Disease BioRED",
        "--corpus_sample NCBI-Disease=all BioRED=all --exclude_tests_of NCBI-Disease",
    ],
    "head": [
        "--recipe single --corpora BioRED --seed 1 --epochs 3",
        "--recipe single --corpora BioRED --head bilstm --epochs 3",
        "--recipe single --corpora BioRED --head bilstm --seed 2 --epochs 3",
    ],
    "cross_encoder": [
        "--recipe single --corpora BioRED --epochs 3",
        "--recipe single --corpora BioRED --encoder embedded:all-mpnet-base-v2 --epochs 3",
    ],
    # best_model: the lever runs of context/head/cross_encoder, then all the data without any scored test set
    "best_model": [
        "--recipe single --corpora BioRED --context margin --context_margin 64 --epochs 3",
        "--recipe single --corpora BioRED --head bilstm --epochs 3",
        "--recipe single --corpora BioRED --encoder embedded:all-mpnet-base-v2 --epochs 3",
        "--recipe aioner --exclude_tests_of BioRED GNormPlus NLM-Gene NCBI-Disease BC5CDR-Disease BC5CDR-Chemical "
        "NLM-Chem Linnaeus Species-800 tmVar3 BioID --epochs 4 --patience 2",
        "BioID --encoder embedded:all-mpnet-base-v2 --epochs 1 --patience 2",  # one epoch: one session
    ],
    "crf_vs_softmax": [
        "--recipe single --corpora BioRED --epochs",
        "--recipe single --corpora BioRED --decoder softmax",
        "--recipe aioner --sample 0.1 --corpus_sample BioRED=all --epochs",
        "--recipe aioner --sample 0.1 --corpus_sample BioRED=all --decoder softmax",
    ],
}


@pytest.mark.parametrize("experiment", sorted(RECIPES))
def test_dry_run_prints_the_right_train_commands_and_writes_nothing(reproduce, experiment, tmp_path, capsys):
    import train

    assert (
        reproduce.main(
            [
                experiment,
                "--scale",
                "cpu",
                "--dry_run",
                "--runs_dir",
                str(tmp_path / "runs"),
                "--results_dir",
                str(tmp_path / "results"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    commands = [line.split("  #")[0] for line in out.splitlines() if line.startswith("python train.py ")]
    assert commands and out.startswith(f"# {experiment} --scale cpu:") and "expected ≤" in out
    for piece in RECIPES[experiment]:
        assert any(piece in c for c in commands), (piece, commands)
    sampled_alone = [c for c in commands if "--recipe single" in c and "--sample 0.1" in c]
    capped = [c for c in commands if "--recipe single --corpora BioRED --sample " in c]  # fig3's equal steps
    all_data = [c for c in commands if "--recipe aioner --exclude_tests_of" in c and experiment == "best_model"]
    assert all("--epochs 3 " in c for c in commands if c not in sampled_alone + capped + all_data)
    assert all("--epochs 10 " in c for c in sampled_alone) and all("--eval_test --output_dir " in c for c in commands)
    if experiment == "fig4":  # AIONER-Pretrained starts from table2's AIO model
        assert any(f"--init_from {tmp_path}/runs/cpu/aioner-s0.1-BioREDall " in c for c in commands)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()
    # Every command is one train.py accepts.
    for c in commands:
        train.check_args(train.parse_args(shlex.split(c)[2:]))  # options parse, corpus names exist


def test_every_scale_names_the_same_settings(reproduce):
    keys = {frozenset(s) for s in reproduce.SCALES.values()}
    assert len(keys) == 1 and {"full", "cpu", "smoke"} <= set(reproduce.SCALES)


def test_table3_smoke_scores_single_mtl_and_aio_in_both_protocols(tiny_encoder, tmp_path):
    res = run_script(*smoke_args("table3", tiny_encoder, tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    result = json.loads((tmp_path / "results" / "table3_smoke.json").read_text())
    row = result["corpora"]["NCBI-Disease"]  # the smoke scale's one external corpus
    assert row["single"]["task"] == "Disease"
    for protocol in ("clean", "leaky"):
        assert row[protocol]["aioner"]["task"] == "Disease" and row[protocol]["mtl"]["task"] == "NCBI-Disease"
        for system in ("aioner", "mtl"):
            assert 0 <= row[protocol][system]["wilcoxon_vs_single"]["p_value"] <= 1
        counts = result["counts"][protocol]
        assert counts["compared"] == 1 and counts["aio_at_least_single"] in (0, 1)
    assert result["headline_protocol"] == "clean"
    clean, leaky = result["runs"]["clean/mtl"], result["runs"]["leaky/mtl"]
    assert clean != leaky and "--exclude_tests_of BioRED NCBI-Disease" in result["commands"][clean.split("/")[-1]]
    # the leak document by document: NCBI-Disease's one test abstract in BioRED's training split against the rest
    split = result["leak_by_document"]["NCBI-Disease"]
    assert split["documents"]["seen"] == row["test_documents_in_leaky_training"] == 1
    assert (
        split["documents"]["seen"] + split["documents"]["unseen"]
        == row["clean"]["aioner"]["wilcoxon_vs_single"]["documents"]
    )
    assert split.keys() == {"documents", "single", "clean/aioner", "clean/mtl", "leaky/aioner", "leaky/mtl"}
    assert all(0 <= split[s][part] <= 100 for s in split if s != "documents" for part in ("seen", "unseen"))
    markdown = (tmp_path / "results" / "table3_smoke.md").read_text()
    assert "test documents seen / unseen" in markdown
    assert result["leak_figure"].endswith("table3_smoke_leak.png") and "(table3_smoke_leak.png)" in markdown
    assert (tmp_path / "results" / "table3_smoke_leak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MTL (clean)" in markdown and "AIONER (leaky)" in markdown and "NLM-Chem" in markdown
    assert result["figure"].endswith("table3_smoke.png") and "![Table 3](table3_smoke.png)" in markdown
    assert (tmp_path / "results" / "table3_smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --report_finished: the leaky MTL model still training is left out (no F1, no count) and listed as pending;
    # everything finished is reported as before, and nothing trains.
    leaky_mtl = tmp_path / "runs" / "smoke" / leaky.split("/")[-1]
    (leaky_mtl / "results.json").unlink()
    res = run_script(*smoke_args("table3", tiny_encoder, tmp_path), "--report_finished")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert not (leaky_mtl / "results.json").exists()
    partial = json.loads((tmp_path / "results" / "table3_smoke.json").read_text())
    part = partial["corpora"]["NCBI-Disease"]

    def scores(system):  # what was measured (how it was trained this time, reused or not, aside)
        return {k: v for k, v in system.items() if k not in ("reused", "wall_seconds")}

    assert part["leaky"]["mtl"] is None and scores(part["leaky"]["aioner"]) == scores(row["leaky"]["aioner"])
    assert scores(part["single"]) == scores(row["single"])
    assert all(scores(part["clean"][k]) == scores(row["clean"][k]) for k in ("aioner", "mtl"))
    assert partial["counts"]["leaky"]["mtl_at_least_single"] is None
    assert partial["counts"]["leaky"]["mean_f1"]["mtl"] is None
    assert partial["counts"]["clean"] == result["counts"]["clean"]
    assert partial["pending"].keys() == {leaky_mtl.name}
    assert "leaky/mtl" not in partial["leak_by_document"]["NCBI-Disease"]
    assert "MTL still training" in (tmp_path / "results" / "table3_smoke.md").read_text()


def test_figures_are_png_files(reproduce, tmp_path):
    reproduce.line_chart(tmp_path / "f3.png", [10, 50], {"a": [1.0, 2.0], "b": [2.0, 3.0]}, "x", "F1")
    reproduce.bar_chart(tmp_path / "f4.png", {"baseline": 50.0, "MTL": 60.5}, "F1")
    reproduce.grouped_bar_chart(  # a group without a bar in one series (NLM-Chem has no single model)
        tmp_path / "t3.png",
        ["NCBI-Disease", "NLM-Chem"],
        {"single": [60.0, None], "AIONER (clean)": [70.0, 47.5], "AIONER (leaky)": [71.0, 46.4]},
        "F1",
        {"single": "grey", "AIONER (clean)": "orange", "AIONER (leaky)": "orange"},
        hatched=["AIONER (leaky)"],
    )
    for name in ("f3.png", "f4.png", "t3.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_best_model_smoke_scores_every_lever_and_the_combination(tiny_encoder, tmp_path):
    res = run_script(*smoke_args("best_model", tiny_encoder, tmp_path), "--cross_encoder", tiny_encoder)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    result = json.loads((tmp_path / "results" / "best_model_smoke.json").read_text())
    levers = result["levers"]
    assert set(levers) == {
        "baseline",
        "context_margin",
        "head_bilstm",
        "encoder_mpnet",
        "all_data",
        "combined",
        "ensemble",
    }
    from aioner.prediction import corpus_documents

    gold = len(corpus_documents("BioRED")[2])
    for name, row in levers.items():
        assert 0 <= row["bio_red"]["overall_f1"] <= 100 and set(row["bio_red"]["per_type_f1"]) >= TYPES, name
        assert row["tagging_docs_per_s"] > 0 and row["train_seconds"] > 0, name
        assert (row["externals"] is None) == (name not in ("all_data", "combined")), name
        assert name == "baseline" or 0 <= row["wilcoxon_vs_baseline"]["p_value"] <= 1, name
        errors = row["bio_red_errors"]  # every strict error in one class: they add up to the gold not found
        assert set(errors["false_negatives"]) == {"type", "boundary", "boundary_type", "missed"}, name
        missed = gold * (1 - row["bio_red"]["recall"] / 100)
        assert sum(errors["false_negatives"].values()) == pytest.approx(missed, abs=0.5), name
    assert set(levers["combined"]["externals"]) == {"NCBI-Disease"}  # the smoke scale's one external corpus
    assert sum(levers["ensemble"]["weights"]) == pytest.approx(1)
    commands = result["commands"]
    assert "--exclude_tests_of BioRED NCBI-Disease" in commands["aioner-s4-clean"]
    assert f"--encoder {tiny_encoder}" in commands["aioner-s4-clean-mpnet"]  # the second encoder
    # no lever experiment measured here: the paper's sentence windows and dense head
    assert result["combination"]["context"] == "sentence" and result["combination"]["head"] == "dense"
    assert result["goal_f1"] == 88.65 and result["best"] in levers
    assert "| combined |" in (tmp_path / "results" / "best_model_smoke.md").read_text()
    # --report_finished: a combination still training is left out and listed as pending, and nothing trains.
    combined = tmp_path / "runs" / "smoke" / "aioner-s4-clean-mpnet"
    (combined / "results.json").unlink()
    res = run_script(
        *smoke_args("best_model", tiny_encoder, tmp_path), "--cross_encoder", tiny_encoder, "--report_finished"
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert not (combined / "results.json").exists()
    partial = json.loads((tmp_path / "results" / "best_model_smoke.json").read_text())
    assert set(partial["levers"]) == set(levers) - {"combined"}
    assert partial["levers_pending"].keys() == {"combined"} and partial["pending"].keys() == {"aioner-s4-clean-mpnet"}
    assert partial["levers"]["all_data"]["bio_red"]["overall_f1"] == levers["all_data"]["bio_red"]["overall_f1"]
    # A run folder lost with its machine: its row (and the ensemble's, which needs it) is carried over from the
    # results file, marked with where and when; a folder still here but unfinished stays pending.
    # Tagged again in bf16 this time: fp32 predictions are not taken from the cache for it.
    shutil.rmtree(tmp_path / "runs" / "smoke" / "single-BioRED-s4")
    res = run_script(
        *smoke_args("best_model", tiny_encoder, tmp_path),
        "--cross_encoder",
        tiny_encoder,
        "--report_finished",
        "--tag_precision",
        "bf16",
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert not (tmp_path / "runs" / "smoke" / "single-BioRED-s4").exists()  # nothing trained again
    carried = json.loads((tmp_path / "results" / "best_model_smoke.json").read_text())
    assert carried["carried_over"] == ["baseline", "ensemble"] and set(carried["levers"]) == set(partial["levers"])
    for name in ("baseline", "ensemble"):
        row = carried["levers"][name]
        assert row["carried_over"]["date"] == partial["date"] and row["bio_red"] == partial["levers"][name]["bio_red"]
    assert carried["levers"]["head_bilstm"]["wilcoxon_vs_baseline"] is None  # per document: needs the baseline
    assert partial["levers"]["all_data"]["bio_red"]["tagging_precision"] == "fp32"
    assert carried["levers"]["all_data"]["bio_red"]["tagging_precision"] == "bf16"
    assert "in bf16" in res.stdout  # tagged, not read from the fp32 cache
    assert carried["pending"].keys() == {"aioner-s4-clean-mpnet"}
    assert "| baseline† |" in (tmp_path / "results" / "best_model_smoke.md").read_text()
    res = run_script(*smoke_args("table2", tiny_encoder, tmp_path), "--report_finished")
    assert res.returncode != 0 and "needs every run" in res.stderr


def test_cross_encoder_smoke_scores_both_members_and_both_ensembles(tiny_encoder, tmp_path):
    res = run_script(*smoke_args("cross_encoder", tiny_encoder, tmp_path), "--cross_encoder", tiny_encoder)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    result = json.loads((tmp_path / "results" / "cross_encoder_smoke.json").read_text())
    systems = result["systems"]
    assert set(systems) == {"minilm", "mpnet", "ensemble_uniform", "ensemble_dev_weighted"}
    for name, row in systems.items():
        assert 0 <= row["overall_f1"] <= 100 and set(row["per_type_f1"]) >= TYPES, name
        assert row["tagging_docs_per_s"] > 0, name  # every system timed, the members too
    weights = result["dev_f1_by_mpnet_weight"]
    assert result["chosen_mpnet_weight"] == float(max(weights, key=weights.get))  # JSON keys: strings
    assert systems["ensemble_uniform"]["weights"] == {"all-MiniLM-L6-v2": 0.5, "all-mpnet-base-v2": 0.5}
    for name in ("ensemble_uniform", "ensemble_dev_weighted"):
        assert 0 <= systems[name]["wilcoxon_vs_mpnet"]["p_value"] <= 1
    assert "| ensemble_dev_weighted |" in (tmp_path / "results" / "cross_encoder_smoke.md").read_text()


def test_best_model_combines_only_the_levers_that_gained_beyond_noise(reproduce, tmp_path):
    from benchmarks import levers

    ctx = reproduce.Context(reproduce.parse_args(["best_model", "--results_dir", str(tmp_path)]))
    assert ctx.results_dir == tmp_path

    def write(context_p, head_delta, sd):
        wil = {"wilcoxon_vs_sentence": {"p_value": context_p}}
        (tmp_path / "context_cpu.json").write_text(
            json.dumps(
                {
                    "systems": {
                        "sentence": {"overall_f1": 74.0},
                        "pack": {"overall_f1": 73.0, **wil},
                        "margin": {"overall_f1": 75.0, **wil},
                    }
                }
            )
        )
        (tmp_path / "head_cpu.json").write_text(
            json.dumps({"delta_mean_f1": head_delta, "dense": {"sd_f1": sd}, "bilstm": {"sd_f1": 0.1}})
        )
        return levers.chosen_levers(ctx)

    assert levers.chosen_levers(ctx)["context"] == "sentence"  # nothing measured
    chosen = write(context_p=0.01, head_delta=1.2, sd=0.5)
    assert (chosen["context"], chosen["head"]) == ("margin", "bilstm")
    chosen = write(context_p=0.2, head_delta=1.2, sd=1.5)  # not significant / within the seed spread
    assert (chosen["context"], chosen["head"]) == ("sentence", "dense")


@pytest.mark.parametrize("native", [True, False])
def test_the_cpu_scale_trains_in_bf16_only_where_the_cpu_has_it(reproduce, native, monkeypatch, tmp_path, capsys):
    """Emulated bf16 (an AVX2-only CPU) trained at 58 tokens/s: the scale's bf16 needs native support."""
    import pipeline_aioner

    monkeypatch.setattr(pipeline_aioner, "native_bf16_cpu", lambda: native)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    argv = ["table2", "--scale", "cpu", "--dry_run", "--runs_dir", str(tmp_path), "--results_dir", str(tmp_path)]
    assert reproduce.main(argv) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python train.py")]
    assert len(commands) == 2 and all(("--bf16" in c) == native for c in commands)


@pytest.mark.parametrize("gpu_bf16", [True, False])
def test_on_a_gpu_the_scale_trains_in_bf16_where_the_gpu_has_it(reproduce, gpu_bf16, monkeypatch, tmp_path, capsys):
    """train.py trains on the GPU when there is one: the host CPU's bf16 does not matter then, the GPU's does."""
    import pipeline_aioner

    monkeypatch.setattr(pipeline_aioner, "native_bf16_cpu", lambda: not gpu_bf16)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda *a, **k: gpu_bf16)
    argv = ["table2", "--scale", "cpu", "--dry_run", "--runs_dir", str(tmp_path), "--results_dir", str(tmp_path)]
    assert reproduce.main(argv) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python train.py")]
    assert len(commands) == 2 and all(("--bf16" in c) == gpu_bf16 for c in commands)


def test_training_seconds_sum_every_session_of_a_resumed_run():
    from benchmarks.common import training_seconds

    history = [{"epoch": 1, "train_seconds": 2102.8}, {"epoch": 2, "train_seconds": 2163.6}]
    # The last process ran 1 epoch plus scoring (seconds); the run trained 2 epochs across two sessions.
    assert training_seconds({"seconds": 2500.0, "train_seconds": 4266.4, "history": history}) == 4266.4
    assert training_seconds({"seconds": 2500.0, "history": history}) == 4266.4  # files written before the key
    assert training_seconds({"seconds": 5000.0, "history": history}) == 5000.0  # one process (or GERBERA's two stages)
    assert training_seconds({"seconds": 2500.0, "history": []}) == 2500.0


def test_retag_compares_a_cached_prediction_with_todays_tagging_and_replaces_it(tiny_checkpoint, tmp_path):
    import shutil

    from benchmarks import retag
    from benchmarks.reproduce import read_cache, tagging_code

    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint, run)
    (run / "repro_eval").mkdir()
    old = {"strict": {"overall": {"f1": 0.0}}, "predictions": [], "tagging_code": "an-older-one"}
    (run / "repro_eval" / "BioRED.json").write_text(json.dumps(old))
    args = ["--name", "t", "--runs", run, tmp_path / "no-cache", "--corpora", "BioRED", "--results_dir", tmp_path]
    assert retag.main([str(a) for a in args]) == 0
    result = json.loads((tmp_path / "retag_t.json").read_text())
    ((key, row),) = result["rows"].items()  # the run without a cache is skipped
    assert key.endswith("run / BioRED") and row["f1_before"] == 0.0 and row["tagging_code_before"] == "an-older-one"
    after = read_cache(run, "BioRED")  # today's code made the cache now
    assert after is not None and row["f1_after"] == round(100 * after["strict"]["overall"]["f1"], 2)
    assert row["entities_gone_or_new"] == len(after["predictions"]) and result["tagging_code_after"] == tagging_code()
    assert row["wilcoxon"]["documents"] == 100

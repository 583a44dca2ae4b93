"""aioner.scoring, aioner.significance, aioner.evaluation, aioner.evaluate_cli and metrics/aioner_ner against
hand-computed numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioner import evaluate_cli, evaluation, scoring, significance

REPO = Path(__file__).resolve().parents[1]


def approx(x):
    return pytest.approx(x, abs=1e-9)


# ----- strict and relaxed entity matching -----
GOLD = [("1", 0, 5, "Gene"), ("1", 10, 20, "Disease"), ("1", 30, 35, "Gene"), ("2", 0, 4, "Chemical")]
PRED = [
    ("1", 0, 5, "Gene"),  # exact
    ("1", 12, 18, "Disease"),  # inside the gold disease: relaxed only
    ("1", 30, 33, "Gene"),  # overlaps gold (30, 35) ...
    ("1", 31, 35, "Gene"),  # ... and so does this one: only one of the two may count
    ("2", 0, 4, "Disease"),  # right span, wrong type
    ("1", 40, 45, "Gene"),
]  # nothing there


def test_strict_by_hand():
    s = scoring.score_entities(GOLD, PRED, "strict")
    assert (s["overall"]["tp"], s["overall"]["pred"], s["overall"]["gold"]) == (1, 6, 4)
    assert s["overall"]["precision"] == approx(1 / 6) and s["overall"]["recall"] == approx(1 / 4)
    assert s["overall"]["f1"] == approx(0.2)
    assert s["per_type"]["Gene"]["f1"] == approx(1 / 3)  # P 1/4, R 1/2
    assert s["per_type"]["Chemical"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "pred": 0, "gold": 1}


def test_relaxed_by_hand_two_predictions_on_one_gold_count_once():
    s = scoring.score_entities(GOLD, PRED, "relaxed")
    gene = s["per_type"]["Gene"]
    assert (gene["tp"], gene["pred"], gene["gold"]) == (2, 4, 2)  # not 3: gold (30, 35) is used once
    assert s["per_type"]["Disease"]["tp"] == 1
    assert s["overall"]["precision"] == approx(0.5) and s["overall"]["recall"] == approx(0.75)
    assert s["overall"]["f1"] == approx(0.6)


def test_relaxed_needs_a_shared_character_not_just_touching():
    # AIONER's Test_Evaluation.py tests max(starts) <= min(ends) and would count this one.
    gold = [("d", 0, 5, "Gene")]
    assert scoring.score_entities(gold, [("d", 5, 9, "Gene")], "relaxed")["overall"]["tp"] == 0
    assert scoring.score_entities(gold, [("d", 4, 9, "Gene")], "relaxed")["overall"]["tp"] == 1
    assert scoring.score_entities(gold, [("d", 0, 5, "Disease")], "relaxed")["overall"]["tp"] == 0  # same type needed
    with pytest.raises(ValueError, match="mode"):
        scoring.score_entities(gold, gold, "lenient")


def test_type_map_ncbi_disease_and_ignored_types():
    from dataset_scripts.corpora import CORPORA

    ncbi = CORPORA["NCBI-Disease"].types
    gold = [
        ("1", 0, 4, "SpecificDisease"),
        ("1", 10, 14, "DiseaseClass"),
        ("1", 20, 24, "Modifier"),
        ("1", 30, 34, "CompositeMention"),
    ]
    pred = [("1", 0, 4, "Disease"), ("1", 10, 14, "DiseaseClass"), ("1", 40, 44, "Gene")]
    s = scoring.score_entities(gold, pred, "strict", type_map=ncbi)
    assert s["per_type"]["Disease"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": approx(2 / 3),
        "tp": 2,
        "pred": 2,
        "gold": 4,
    }
    assert s["per_type"]["Gene"]["pred"] == 1  # a type the corpus lacks stays a visible false positive
    # mapped to None: ignored on both sides (tmVar3 annotates genes but evaluates variants only)
    tmvar = CORPORA["tmVar3"].types
    s = scoring.score_entities(
        [("1", 0, 4, "ProteinMutation"), ("1", 5, 9, "Gene")],
        [("1", 0, 4, "Variant"), ("1", 5, 9, "Gene")],
        type_map=tmvar,
    )
    assert s["overall"]["f1"] == 1.0 and list(s["per_type"]) == ["Variant"]
    with pytest.raises(KeyError, match="Protein"):  # a gold type missing from the map is not dropped silently
        scoring.score_entities([("1", 0, 4, "Protein")], [], type_map=ncbi)
    assert scoring.map_tags(["B-SpecificDisease", "I-SpecificDisease", "O-ALL", "B-Gene"], tmvar | ncbi) == [
        "B-Disease",
        "I-Disease",
        "O",
        "O",
    ]


def test_empty_predictions_give_zeros():
    s = scoring.score_entities(GOLD, [], "relaxed")
    assert s["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "pred": 0, "gold": 4}
    assert scoring.score_entities([], [], "strict")["overall"]["f1"] == 0.0


def test_prediction_for_a_document_absent_from_the_gold_raises():
    with pytest.raises(KeyError, match="'9'"):
        scoring.score_entities(GOLD, PRED + [("9", 0, 1, "Gene")], documents=["1", "2"])
    # a gold document without gold mentions is fine
    scoring.score_entities(GOLD, [("3", 0, 1, "Gene")], documents=["1", "2", "3"])


# ----- word tags -----
def test_seqeval_strict_iob2_by_hand():
    refs = [["B-Gene", "I-Gene", "O", "B-Disease"], ["O-ALL", "B-Chemical", "I-Chemical"]]
    preds = [["B-Gene", "I-Gene", "O-Gene", "B-Gene"], ["I-Chemical", "I-Chemical", "O"]]
    s = scoring.seqeval_scores(refs, preds)
    # gold: Gene, Disease, Chemical; predicted: Gene (right), Gene (wrong); strict IOB2
    # starts no entity at an I- tag, so sentence 2 predicts nothing.
    assert (s["overall_precision"], s["overall_recall"]) == (approx(1 / 2), approx(1 / 3))
    assert s["overall_f1"] == approx(0.4)
    assert s["overall_accuracy"] == approx(3 / 7)  # O-Gene vs O counts as right
    assert s["Gene"] == {"precision": 0.5, "recall": 1.0, "f1": approx(2 / 3), "number": 1}
    assert s["Chemical"]["number"] == 1 and s["Chemical"]["recall"] == 0.0
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    plain = [[t if not t.startswith("O") else "O" for t in seq] for seq in preds]
    assert s["overall_f1"] == approx(
        f1_score([[("O" if t.startswith("O") else t) for t in r] for r in refs], plain, mode="strict", scheme=IOB2)
    )
    lenient = scoring.seqeval_scores([["B-Gene", "O"]], [["I-Gene", "O"]], mode=None)
    assert lenient["overall_f1"] == 1.0  # conlleval: I-Gene starts an entity


def test_per_class_report_macro_and_weighted_by_hand():
    refs = [["B-Gene", "I-Gene", "I-Gene", "O-ALL", "O", "O-Gene", "B-Disease"]]
    preds = [["B-Gene", "I-Gene", "O-ALL", "O", "O", "O", "O-Disease"]]
    r = scoring.per_class_report(refs, preds)
    # B: gold 2, pred 1, right 1; I: gold 2, pred 1, right 1; O: gold 3, pred 5, right 3
    assert r["B"] == {"precision": 1.0, "recall": 0.5, "f1": approx(2 / 3), "support": 2}
    assert r["O"] == {"precision": approx(0.6), "recall": 1.0, "f1": approx(0.75), "support": 3}
    assert r["accuracy"] == approx(5 / 7)
    assert r["macro avg"]["precision"] == approx(2.6 / 3)
    assert r["macro avg"]["recall"] == approx(2 / 3)
    assert r["macro avg"]["f1"] == approx((2 / 3 + 2 / 3 + 0.75) / 3)
    assert r["weighted avg"]["precision"] == approx(5.8 / 7)
    assert r["weighted avg"]["recall"] == approx(5 / 7)
    assert r["weighted avg"]["f1"] == approx((2 * 2 / 3 + 2 * 2 / 3 + 3 * 0.75) / 7)
    full = scoring.per_class_report(refs, preds, collapse_types=False)
    assert set(full) == {"B-Gene", "I-Gene", "B-Disease", "O", "accuracy", "macro avg", "weighted avg"}
    assert "| macro avg | 0.8667 | 0.6667 | 0.6944 | 7 |" in scoring.format_per_class(r)


def test_document_word_tags_project_character_spans_on_words():
    text = "BRCA1 causes breast cancer."
    refs, preds = scoring.document_word_tags({"d": text}, [("d", 13, 26, "Disease")], [("d", 20, 26, "Disease")])
    assert refs == [["O", "O", "B-Disease", "I-Disease", "O"]]
    assert preds == [["O", "O", "O", "B-Disease", "O"]]


# ----- significance -----
def _systems(n=30):
    gold = [(str(d), s, s + 3, "Gene") for d in range(n) for s in (0, 10)]
    better = list(gold)  # F1 1 on every document
    worse = [g for g in gold if g[1] == 0]  # F1 2/3 on every document
    return gold, better, worse


def test_wilcoxon_and_bootstrap_identical_systems_are_not_significant():
    gold, better, worse = _systems()
    w = significance.wilcoxon_test(gold, worse, worse)
    assert w["p_value"] == 1.0 and w["differing_documents"] == 0
    b = significance.paired_bootstrap(gold, worse, worse, n_resamples=200, seed=1)
    assert b["p_value"] == 1.0 and b["delta_f1"] == 0.0


def test_wilcoxon_and_bootstrap_always_better_system_is_significant():
    gold, better, worse = _systems()
    w = significance.wilcoxon_test(gold, better, worse, "relaxed")
    assert w["p_value"] < 0.05 and w["documents"] == 30
    assert (w["mean_f1_a"], w["mean_f1_b"]) == (1.0, approx(2 / 3))
    b = significance.paired_bootstrap(gold, better, worse, n_resamples=500, seed=0)
    assert b["p_value"] < 0.05 and b["delta_f1"] == approx(1 / 3)  # micro F1 1 vs 2*30/(30+60)
    assert b["ci95"][0] > 0
    again = significance.paired_bootstrap(gold, better, worse, n_resamples=500, seed=0)
    assert again == b  # fixed seed: reproducible
    # a system better on half the documents and worse on the other half: no significance
    mixed = [g for g in gold if int(g[0]) % 2 == 0] + [g for g in gold if int(g[0]) % 2 and g[1] == 0]
    flipped = [g for g in gold if int(g[0]) % 2 == 1] + [g for g in gold if int(g[0]) % 2 == 0 and g[1] == 0]
    assert significance.wilcoxon_test(gold, mixed, flipped)["p_value"] > 0.05
    assert significance.paired_bootstrap(gold, mixed, flipped, n_resamples=300)["p_value"] > 0.05


def test_per_document_f1_empty_documents():
    f1 = significance.per_document_f1([("a", 0, 1, "Gene")], [("b", 0, 1, "Gene")], documents=["a", "b", "c"])
    assert f1 == {"a": 0.0, "b": 0.0, "c": 1.0}  # c: nothing to find, nothing found
    with pytest.raises(KeyError, match="'z'"):
        significance.wilcoxon_test([], [("z", 0, 1, "Gene")], [], documents=["a"])


# ----- files and the CLI -----
PUBTATOR_GOLD = """100|t|BRCA1 causes breast cancer.
100|a|TP53 and aspirin.
100\t0\t5\tBRCA1\tGene
100\t13\t26\tbreast cancer\tDisease
100\t28\t32\tTP53\tGene
100\t37\t44\taspirin\tChemical

200|t|No entities here.
200|a|

"""
PUBTATOR_PRED = """100|t|BRCA1 causes breast cancer.
100|a|TP53 and aspirin.
100\t0\t5\tBRCA1\tGene
100\t20\t26\tcancer\tDisease
100\t28\t32\tTP53\tChemical

200|t|No entities here.
200|a|

"""


# ----- where the strict errors are -----
def test_error_breakdown_puts_every_strict_error_in_one_class():
    b = scoring.error_breakdown(GOLD, PRED)
    # gold (1,10,20) and (1,30,35): boundary; gold (2,0,4) Chemical predicted as Disease: type
    assert b["false_negatives"] == {"type": 1, "boundary": 2, "boundary_type": 0, "missed": 0}
    # (1,12,18) and both halves of (1,30,35): boundary; (2,0,4,Disease): type; (1,40,45): spurious
    assert b["false_positives"] == {"type": 1, "boundary": 3, "boundary_type": 0, "spurious": 1}
    assert b["type_confusion"] == {"Chemical -> Disease": 1}
    assert b["per_type"]["Chemical"]["false_negatives"]["type"] == 1
    assert b["per_type"]["Disease"]["false_positives"]["type"] == 1  # a false positive counts under its own type
    strict = scoring.score_entities(GOLD, PRED)["overall"]
    assert sum(b["false_negatives"].values()) == strict["gold"] - strict["tp"]
    assert sum(b["false_positives"].values()) == strict["pred"] - strict["tp"]


def test_error_breakdown_compares_errors_with_errors_only():
    gold = [("d", 0, 10, "Gene"), ("d", 0, 5, "Chemical"), ("d", 20, 25, "Gene")]
    # (0,10,Gene) is right, so it is no boundary error of the nested gold chemical: that one is missed
    pred = [("d", 0, 10, "Gene"), ("d", 18, 30, "Disease")]
    b = scoring.error_breakdown(gold, pred)
    assert b["false_negatives"] == {"type": 0, "boundary": 0, "boundary_type": 1, "missed": 1}
    assert b["false_positives"] == {"type": 0, "boundary": 0, "boundary_type": 1, "spurious": 0}
    table = scoring.format_errors(b)
    assert "| all: missed gold (FN) | 0 | 0 | 1 | 1 | 2 |" in table
    assert "| Disease: wrong predictions (FP) | 0 | 0 | 1 | 0 | 1 |" in table


IOB_GOLD = (
    "-DOCSTART-\tO\n\nAspirin\tB-Chemical\nreduces\tO\nfever\tB-Disease\n.\tO\n\n"
    "BRCA1\tB-Gene\nmutations\tO\n.\tO\n\n-DOCSTART-\tO\n\nTumor\tB-Disease\ngrowth\tI-Disease\n"
)
IOB_PRED = (
    "-DOCSTART-\tO\n\nAspirin\tB-Chemical\nreduces\tO-ALL\nfever\tO-ALL\n.\tO-ALL\n\n"
    "BRCA1\tB-Gene\nmutations\tO-ALL\n.\tO-ALL\n\n-DOCSTART-\tO\n\nTumor\tB-Disease\ngrowth\tO-ALL\n"
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_pubtator_table_and_json(tmp_path, capsys):
    gold, pred = _write(tmp_path, "g.txt", PUBTATOR_GOLD), _write(tmp_path, "p.txt", PUBTATOR_PRED)
    out_json = tmp_path / "r.json"
    assert evaluate_cli.main(["--gold", gold, "--pred", pred, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "| Gene | 2 | 1 | 1 | 100.00 | 50.00 | 66.67 |" in out
    assert "| **overall (micro)** | 4 | 3 | 1 | 33.33 | 25.00 | 28.57 |" in out  # strict
    assert "| **overall (micro)** | 4 | 3 | 2 | 66.67 | 50.00 | 57.14 |" in out  # relaxed
    result = json.loads(out_json.read_text())
    assert result["relaxed"]["per_type"]["Disease"]["tp"] == 1 and result["documents"] == 2


def test_cli_pubtator_bad_input_exits_2(tmp_path, capsys):
    gold = _write(tmp_path, "g.txt", PUBTATOR_GOLD)
    stray = _write(tmp_path, "p.txt", PUBTATOR_PRED + "300|t|Other.\n300|a|\n\n")
    assert evaluate_cli.main(["--gold", gold, "--pred", stray]) == 2
    assert "absent from the gold" in capsys.readouterr().err
    assert evaluate_cli.main(["--gold", gold, "--pred", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    changed = _write(tmp_path, "c.txt", PUBTATOR_PRED.replace("No entities here.", "Other text here."))
    assert evaluate_cli.main(["--gold", gold, "--pred", changed]) == 2
    assert "differs from the gold text" in capsys.readouterr().err
    assert evaluate_cli.main(["--gold", gold, "--pred", gold, "--type-map", "NoSuchCorpus"]) == 2


def test_cli_iob_with_type_map_and_per_class(tmp_path, capsys):
    gold, pred = _write(tmp_path, "g.tsv", IOB_GOLD), _write(tmp_path, "p.tsv", IOB_PRED)
    assert evaluate_cli.main(["--gold", gold, "--pred", pred, "--format", "iob", "--per-class"]) == 0
    out = capsys.readouterr().out
    assert "| **overall (micro)** | 4 | 3 | 2 | 66.67 | 50.00 | 57.14 |" in out  # strict
    assert "| **overall (micro)** | 4 | 3 | 3 | 100.00 | 75.00 | 85.71 |" in out  # relaxed
    assert "seqeval (strict IOB2): P 66.67, R 50.00, F1 57.14, word accuracy 77.78" in out
    assert "| B | 1.0000 | 0.7500 | 0.8571 | 4 |" in out and "| accuracy | – | – | 0.7778 | 9 |" in out
    tsv = _write(tmp_path, "map.tsv", "# raw\taio\nChemical\tChemical\nDisease\tDisease\nGene\t-\n")
    assert (
        evaluate_cli.main(["--gold", gold, "--pred", pred, "--format", "iob", "--mode", "strict", "--type-map", tsv])
        == 0
    )
    out = capsys.readouterr().out
    assert "| **overall (micro)** | 3 | 2 | 1 | 50.00 | 33.33 | 40.00 |" in out and "relaxed" not in out
    assert evaluate_cli.main(["--gold", gold, "--pred", pred, "--format", "iob", "--errors"]) == 0
    # "fever" missed, "Tumor growth" cut short: a boundary error on each side
    assert "| all: missed gold (FN) | 0 | 1 | 0 | 1 | 2 |" in capsys.readouterr().out
    short = _write(tmp_path, "s.tsv", IOB_PRED.rsplit("\n\n", 1)[0] + "\n")
    assert evaluate_cli.main(["--gold", gold, "--pred", short, "--format", "iob"]) == 2
    assert "sentences" in capsys.readouterr().err


def test_cli_as_module_and_compare(tmp_path):
    gold, pred = _write(tmp_path, "g.txt", PUBTATOR_GOLD), _write(tmp_path, "p.txt", PUBTATOR_PRED)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "aioner.evaluate_cli",
            "--gold",
            gold,
            "--pred",
            gold,
            "--compare",
            pred,
            "--resamples",
            "100",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "| **overall (micro)** | 4 | 4 | 4 | 100.00 | 100.00 | 100.00 |" in run.stdout
    assert "bootstrap p =" in run.stdout and "Wilcoxon p =" in run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "aioner.evaluate_cli", "--gold", gold, "--pred", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no such file: nope" in bad.stderr


# ----- the evaluate metric module -----
def test_metric_module_loads_offline_and_matches_hand_numbers(tmp_path):
    code = f"""
import json, evaluate
m = evaluate.load({str(REPO / "metrics" / "aioner_ner")!r})
refs = [["B-Gene", "I-Gene", "O", "B-Disease"], ["O-ALL", "B-Chemical", "I-Chemical"]]
preds = [["B-Gene", "I-Gene", "O-Gene", "B-Gene"], ["I-Chemical", "I-Chemical", "O"]]
print(json.dumps([m.compute(predictions=preds, references=refs),
                  m.compute(predictions=[["O-ALL"]], references=[["O"]])]))
"""
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_DATASETS_CACHE=str(tmp_path / "ds"),
        HF_EVALUATE_OFFLINE="1",
    )
    env.pop("HF_MODULES_CACHE", None)
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result, empty = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["overall_precision"] == approx(0.5) and result["overall_recall"] == approx(1 / 3)
    assert result["overall_f1"] == approx(0.4) and result["overall_accuracy"] == approx(3 / 7)
    assert result["Gene"] == {"precision": 0.5, "recall": 1.0, "f1": approx(2 / 3), "number": 1}
    assert result["Disease"]["number"] == 1
    assert empty == {"overall_precision": 0.0, "overall_recall": 0.0, "overall_f1": 0.0, "overall_accuracy": 1.0}


def test_score_documents_on_parsed_pubtator():
    from dataset_scripts.pubtator import parse_pubtator_string

    gold, pred = parse_pubtator_string(PUBTATOR_GOLD), parse_pubtator_string(PUBTATOR_PRED)
    assert evaluation.score_documents(gold, pred, "relaxed")["overall"]["tp"] == 2
    assert evaluation.score_documents(gold, pred[:1], "strict")["overall"]["gold"] == 4  # doc 200 has no gold
    with pytest.raises(KeyError, match="300"):
        evaluation.score_documents(gold[:1], pred[:1] + parse_pubtator_string("300|t|X.\n300|a|\n"))

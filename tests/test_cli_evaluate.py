"""train.py --eval-every and evaluate.py end to end on a tiny run."""

import json
import os

import pytest

from flax_gan.cli import evaluate_main, train_main
from test_cli import SMALL, run_main, script

TINY_EVAL = ["--classifier-steps", "40"]


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("eval") / "run"
    result = script("train.py", "--steps", 300, "--workdir", workdir, "--eval-every", 100, "--eval-num", 300,
                    "--ckpt-every", 100, *TINY_EVAL, *SMALL)
    return workdir, result


def test_eval_during_training_logs_scores_and_keeps_the_best(evaluated_run):
    workdir, result = evaluated_run
    assert "no test split" in result.stderr  # bundled: the output says what the reference is
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fid" in r]
    assert [r["step"] for r in evals] == [100, 200, 300]
    for r in evals:
        assert r["fid"] > 0 and 1.0 <= r["score"] <= 10.0 and 0.0 <= r["min_class_share"] <= 0.1
        assert r["parzen_se"] > 0 and isinstance(r["collapse"], bool)
    best = min(evals, key=lambda r: r["fid"])
    assert os.listdir(workdir / "best") == [str(best["step"])]


def test_evaluate_writes_json_with_reference_rows(evaluated_run, tmp_path):
    workdir, _ = evaluated_run
    out = tmp_path / "scores.json"
    result = script("evaluate.py", "--workdir", workdir, "--num", 300, "--real", "--noise", "--out", out, *TINY_EVAL)
    for name in ("FID", "step 300", "real", "noise"):
        assert name in result.stdout
    scores = json.loads(out.read_text())
    for key in ("fid", "score", "parzen", "parzen_se", "min_class_share", "classifier_accuracy"):
        assert isinstance(scores[key], float), key
    assert scores["step"] == 300 and scores["reference_is_train"] is True
    assert scores["real"]["fid"] < scores["fid"] < scores["noise"]["fid"]
    assert scores["real"]["parzen"] > scores["noise"]["parzen"]


def test_evaluate_best_and_named_steps_are_deterministic(evaluated_run, tmp_path, capsys):
    workdir, _ = evaluated_run
    best = min((json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines() if "fid" in l),
               key=lambda r: r["fid"])["step"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    args = ["--workdir", str(workdir), "--num", "200", "--no-parzen", *TINY_EVAL]
    assert evaluate_main([*args, "--step", "best", "--out", str(a)]) == 0
    assert evaluate_main([*args, "--step", str(best), "--out", str(b)]) == 0
    sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
    assert sa["step"] == best and sa["checkpoint"] == "best" and "parzen" not in sa
    assert sa["fid"] == sb["fid"] and sa["score"] == sb["score"]
    assert sa["weights"] == "raw"  # the run kept no moving average
    raw = tmp_path / "raw.json"
    assert evaluate_main([*args, "--step", str(best), "--raw-weights", "--out", str(raw)]) == 0
    assert json.loads(raw.read_text())["fid"] == sb["fid"]


BAD_EVALUATE = [
    (["--num", "1"], "--num must be between 2 and 100,000, got 1"),
    (["--step", "foo"], "--step must be a step number, latest or best; got 'foo'"),
    (["--step", "12345"], "no checkpoint at step 12345"),
    (["--out", "x.txt"], "--out must name a .json file, got 'x.txt'"),
    (["--test-data", "/no/such/dir"], "--test-data '/no/such/dir' does not exist"),
    (["--classifier-steps", "0"], "--classifier-steps must be a positive integer, got 0"),
]


@pytest.mark.parametrize("argv, message", BAD_EVALUATE)
def test_evaluate_bad_input(evaluated_run, capsys, argv, message):
    workdir, _ = evaluated_run
    code, err = run_main(evaluate_main, ["--workdir", str(workdir), *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_evaluate_without_checkpoints(tmp_path, capsys):
    code, err = run_main(evaluate_main, ["--workdir", str(tmp_path / "missing")], capsys)
    assert code == 2 and "does not exist" in err
    workdir = tmp_path / "run"
    assert train_main(["--steps", "20", "--workdir", str(workdir), "--ckpt-every", "10", *SMALL]) == 0
    code, err = run_main(evaluate_main, ["--workdir", str(workdir), "--step", "best"], capsys)
    assert code == 2 and "train with --eval-every K" in err


@pytest.mark.parametrize("argv, message", [
    (["--eval-every", "0"], "eval_every must be a positive integer, got 0"),
    (["--eval-every", "10", "--eval-num", "1"], "eval_num must be between 2 and 100,000, got 1"),
    (["--eval-every", "10", "--test-data", "/no/such"], "test_data '/no/such' does not exist"),
])
def test_train_bad_eval_flags(tmp_path, capsys, argv, message):
    code, err = run_main(train_main, ["--steps", "10", "--workdir", str(tmp_path / "w"), *argv, *SMALL], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "w").exists()

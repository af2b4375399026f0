"""The scripts end to end: subprocesses for real runs (resume, kill -9, sample), in-process
calls for the many bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import restore as final_state, tree_equal
from flax_gan import checkpoint
from flax_gan.cli import sample_main, train_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--data", "bundled", "--batch-size", "16", "--g-hidden", "32,64", "--d-hidden", "32", "--no-progress"]


def script(name, *args, check=True):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", name), *map(str, args)],
        capture_output=True, text=True, timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} exited {result.returncode}:\n{result.stderr}")
    return result




def test_train_resume_and_sample(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    script("train.py", "--steps", 60, "--workdir", straight, "--ckpt-every", 20, *SMALL)
    script("train.py", "--steps", 30, "--workdir", split, "--ckpt-every", 20, *SMALL)
    resumed = script("train.py", "--steps", 60, "--workdir", split)  # the rest from config.json
    assert "resuming from the checkpoint at step 30" in resumed.stderr
    assert tree_equal(final_state(str(straight)), final_state(str(split)))
    assert sorted(os.listdir(split / "checkpoints")) == ["30", "40", "60"]
    assert (split / "samples" / "step_0000060.png").is_file()

    a, b, png = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "grid.png"
    script("sample.py", "--workdir", split, "--num", 7, "--seed", 3, "--out", a, "--png", png)
    assert sample_main(["--workdir", str(straight), "--num", "7", "--seed", "3", "--out", str(b)]) == 0
    x = np.load(a)
    assert x.shape == (7, 28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.array_equal(x, np.load(b))
    assert png.stat().st_size > 0
    assert sample_main(["--workdir", str(split), "--num", "7", "--seed", "4", "--out", str(b)]) == 0
    assert not np.array_equal(x, np.load(b))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """1000 uninterrupted steps of the small model (--ckpt-every and --log-every do not change it)."""
    reference = tmp_path_factory.mktemp("reference") / "run"
    script("train.py", "--steps", 1000, "--workdir", reference, "--ckpt-every", 1000, *SMALL)
    return final_state(str(reference))


def test_kill_9_then_resume_is_bit_identical(tmp_path, reference_run):
    steps, flags = 1000, ["--ckpt-every", 100, "--log-every", 50, "--sample-every", 1000, *SMALL]
    killed = tmp_path / "killed"

    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--steps", str(steps),
         "--workdir", str(killed), *map(str, flags)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = os.listdir(killed / "checkpoints") if (killed / "checkpoints").is_dir() else []
        if any(d.isdigit() and int(d) >= 200 for d in done):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = max(int(d) for d in os.listdir(killed / "checkpoints") if d.isdigit())
    assert stopped_at < steps, "the run finished before it could be killed; make it longer"

    script("train.py", "--steps", steps, "--workdir", killed)
    assert tree_equal(reference_run, final_state(str(killed)))
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in lines] == list(range(50, steps + 1, 50))


def _stop_with(signum, tmp_path):
    """Starts a run, sends `signum` once it is training, and returns (result, workdir)."""
    workdir = tmp_path / signal.Signals(signum).name
    flags = ["--steps", 1000, "--workdir", workdir, "--ckpt-every", 1000, "--log-every", 50, *SMALL]
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *map(str, flags)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        metrics = workdir / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    sent = time.time()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, workdir, time.time() - sent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_and_resume_is_exact(tmp_path, signum, reference_run):
    code, err, workdir, seconds = _stop_with(signum, tmp_path)
    assert code == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name} at step" in err and "rerun the same command" in err
    assert seconds < 10
    step = int(err.split(" at step ")[1].split(";")[0])
    assert 0 < step < 1000 and step % 50 == 0
    assert str(step) in os.listdir(workdir / "checkpoints")  # saved on the signal, not on --ckpt-every
    script("train.py", "--steps", 1000, "--workdir", workdir)
    assert tree_equal(final_state(str(workdir)), reference_run)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli") / "run"
    assert train_main(["--steps", "20", "--workdir", str(workdir), "--ckpt-every", "10", *SMALL]) == 0
    return workdir


def snapshot(path):
    """Every file under `path` with its size, mtime and bytes: to prove nothing changed."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[p] = (os.stat(p).st_mtime_ns, f.read())
    return out


def run_main(main, argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr().err


BAD_TRAIN = [
    (["--steps", "0"], "steps must be a positive integer, got 0"),
    (["--steps", "-5"], "steps must be a positive integer, got -5"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
    (["--steps", "99999999999"], "steps must be below 2**31"),
    (["--steps", "10", "--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
    (["--steps", "10", "--batch-size", "0"], "batch_size must be a positive integer, got 0"),
    (["--steps", "10", "--data", "imagenet"], "invalid choice: 'imagenet'"),
    (["--steps", "10", "--data-dir", "/no/such/dir"], "data_dir '/no/such/dir' does not exist"),
    (["--steps", "10", "--lr", "nan"], "lr must be a positive finite number, got nan"),
    (["--steps", "10", "--g-hidden", "0,3"], "comma-separated positive integers like 256,512, got '0,3'"),
    (["--steps", "10", "--output-activation", "relu"], "invalid choice: 'relu'"),
    (["--steps", "10", "--ckpt-every", "0"], "ckpt_every must be a positive integer, got 0"),
    (["--steps", "10", "--g-hidden", "100000,100000"], "make 10,088,625,937 parameters; at most 250,000,000"),
    (["--steps", "40", "--loss", "minimax"], "loss is 'minimax' but the run in"),
    (["--steps", "40", "--seed", "1"], "seed is 1 but the run in"),
    (["--steps", "40", "--batch-size", "6000"], "batch_size is 6000 but the run in"),
    (["--steps", "40", "--preset", "seed"], "output_activation is 'sigmoid' but the run in"),
    (["--steps", "40", "--config", "/no/such.yaml"], "config file '/no/such.yaml' does not exist"),
]


@pytest.mark.parametrize("argv, message", BAD_TRAIN)
def test_train_bad_input_one_line_exit_2_nothing_touched(trained_workdir, capsys, argv, message):
    before = snapshot(trained_workdir)
    code, err = run_main(train_main, [*argv, "--workdir", str(trained_workdir), "--no-progress"], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(trained_workdir) == before


def test_train_bad_input_on_new_workdirs(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    code, err = run_main(train_main, ["--steps", "5", "--workdir", str(a_file)], capsys)
    assert code == 2 and "exists and is not a directory" in err and a_file.read_text() == "keep me"

    fresh = tmp_path / "fresh"
    code, err = run_main(train_main, ["--steps", "5", "--workdir", str(fresh), "--data", "bundled", "--batch-size", "6000"], capsys)
    assert code == 2 and "batch_size must be at most the number of training images (5000), got 6000" in err
    assert not fresh.exists()


BAD_SAMPLE = [
    (["--num", "0"], "--num must be between 1 and 1,000,000, got 0"),
    (["--num", "10000000"], "--num must be between 1 and 1,000,000, got 10000000"),
    (["--out", "x.txt"], "--out must name a .npy file, got 'x.txt'"),
    (["--out", "/no/such/dir/x.npy"], "folder '/no/such/dir' does not exist"),
    (["--seed", "-1"], "--seed must be in [0, 2**32), got -1"),
]


@pytest.mark.parametrize("argv, message", BAD_SAMPLE)
def test_sample_bad_input(trained_workdir, tmp_path, capsys, argv, message):
    out = ["--out", str(tmp_path / "s.npy")] if "--out" not in argv else []
    code, err = run_main(sample_main, ["--workdir", str(trained_workdir), *out, *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_sample_without_checkpoint(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run_main(sample_main, ["--workdir", str(empty), "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "no checkpoint in" in err and "train first" in err
    assert os.listdir(empty) == [] and not (tmp_path / "s.npy").exists()
    code, err = run_main(sample_main, ["--workdir", str(tmp_path / "missing"), "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "does not exist" in err


def test_config_file_preset_and_flags_layer(tmp_path, capsys):
    settings = tmp_path / "run.yaml"
    settings.write_text("steps: 10\nbatch-size: 16\ng_hidden: [32, 64]\nd_hidden: [32]\ndata: bundled\nckpt_every: 5\n")
    workdir = tmp_path / "run"
    code = train_main(["--config", str(settings), "--preset", "seed", "--steps", "15", "--workdir", str(workdir), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    saved = checkpoint.read_config(str(workdir))
    assert (saved.steps, saved.batch_size, saved.g_hidden, saved.output_activation) == (15, 16, (32, 64), "sigmoid")
    assert "config: {" in capsys.readouterr().err  # the resolved config is printed at start
    code, err = run_main(train_main, ["--workdir", str(tmp_path / "x")], capsys)
    assert code == 2 and "--steps is required" in err


def test_plot(trained_workdir, tmp_path, capsys):
    from flax_gan.cli import plot_main

    out = tmp_path / "curves.png"
    assert plot_main(["--workdir", str(trained_workdir), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    code, err = run_main(plot_main, ["--workdir", str(tmp_path), "--out", str(out)], capsys)
    assert code == 2 and "no metrics.jsonl" in err


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    result = script("train.py", "--steps", "0", "--workdir", tmp_path / "w", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "train.py: error: steps must be a positive integer, got 0"
    assert not (tmp_path / "w").exists()


def test_num_seeds_trains_gans_that_equal_single_runs(tmp_path):
    from flax_gan.state import select

    many, alone = tmp_path / "many", tmp_path / "alone"
    script("train.py", "--steps", 30, "--workdir", many, "--seed", 5, "--num-seeds", 3, "--ckpt-every", 15, *SMALL)
    script("train.py", "--steps", 60, "--workdir", many)  # resumed: the stacked state round-trips
    script("train.py", "--steps", 60, "--workdir", alone, "--seed", 6, *SMALL)
    stacked, single = final_state(str(many)), final_state(str(alone))
    assert stacked.step.shape == (3,)
    gan = select(stacked, 1)
    for a, b in zip(jax.tree.leaves(gan), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    first = jax.tree.leaves(select(stacked, 0).g_params)[-1]
    assert not np.allclose(np.asarray(first), np.asarray(jax.tree.leaves(gan.g_params)[-1]))  # other seeds differ
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert sample_main(["--workdir", str(many), "--seed-index", "1", "--num", "16", "--out", str(a)]) == 0
    assert sample_main(["--workdir", str(alone), "--num", "16", "--out", str(b)]) == 0
    np.testing.assert_allclose(np.load(a), np.load(b), atol=1e-4)
    for seed in (5, 6, 7):
        assert (many / "samples" / f"seed_{seed}" / "step_0000060.png").is_file()
    last = json.loads((many / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 60 and len(last["per_seed"]["d_loss"]) == 3
    assert last["d_loss"] == pytest.approx(np.mean(last["per_seed"]["d_loss"]), rel=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--num-seeds", "0"], "num_seeds must be a positive integer, got 0"),
    (["--num-seeds", "2", "--devices", "2"], "num_seeds > 1 trains its GANs on one device; got devices 2"),
    (["--num-seeds", "2", "--eval-every", "10"], "eval_every works with one GAN per run"),
    (["--num-seeds", "5000"], "num_seeds must be at most 4096, got 5000"),
])
def test_num_seeds_bad_input(tmp_path, capsys, argv, message):
    code, err = run_main(train_main, ["--steps", "10", "--workdir", str(tmp_path / "w"), *argv, *SMALL], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w").exists()


def test_seed_index_out_of_range(trained_workdir, tmp_path, capsys):
    code, err = run_main(sample_main, ["--workdir", str(trained_workdir), "--seed-index", "1", "--out", str(tmp_path / "s.npy")], capsys)
    assert code == 2 and "--seed-index must be between 0 and 0" in err


def test_raw_weights_sample_the_run_without_its_moving_average(tmp_path):
    ema, plain = tmp_path / "ema", tmp_path / "plain"
    assert train_main(["--steps", "20", "--workdir", str(ema), "--g-ema", "0.9", *SMALL]) == 0
    assert train_main(["--steps", "20", "--workdir", str(plain), *SMALL]) == 0
    out = {name: tmp_path / f"{name}.npy" for name in ("ema", "raw", "plain", "plain_raw")}
    common = ["--num", "8", "--seed", "1"]
    assert sample_main(["--workdir", str(ema), *common, "--out", str(out["ema"])]) == 0
    assert sample_main(["--workdir", str(ema), *common, "--raw-weights", "--out", str(out["raw"])]) == 0
    assert sample_main(["--workdir", str(plain), *common, "--out", str(out["plain"])]) == 0
    assert sample_main(["--workdir", str(plain), *common, "--raw-weights", "--out", str(out["plain_raw"])]) == 0
    x = {name: np.load(path) for name, path in out.items()}
    np.testing.assert_array_equal(x["raw"], x["plain"])  # the average never fed back into training
    np.testing.assert_array_equal(x["plain_raw"], x["plain"])  # nothing to switch off: the same images
    assert not np.allclose(x["ema"], x["raw"])

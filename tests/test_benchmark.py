import json

import jax
import numpy as np
import pytest

from flax_gan import benchmark
from flax_gan.cli import benchmark_main
from flax_gan.state import GANSpec


def test_step_flops_counts_every_matmul_once():
    b = 128
    g = b * (100 * 256 + 256 * 512 + 512 * 784)  # G forward (reused by G's update), MACs
    d = 784 * 256 + 256 * 1  # D forward MACs per image
    macs = (
        g  # G forward
        + 2 * b * d  # D forward on real and fake
        + 2 * b * d  # D weight gradients
        + 2 * b * 256  # D backward into its hidden layer
        + b * d  # updated D forward on the fakes
        + b * d  # updated D backward to the images
        + 2 * g - b * 100 * 256  # G backward: weight gradients, and inputs but the first layer's
    )
    assert benchmark.step_flops(b) == 2 * macs
    assert abs(benchmark.step_flops(b) / 1e9 - 0.731) < 0.001
    assert benchmark.step_flops(2 * b) == 2 * benchmark.step_flops(b)
    assert benchmark.step_flops(b, GANSpec(g_hidden=(8,))) < benchmark.step_flops(b)


def test_step_flops_of_maxout_counts_every_piece():
    b = 100
    maxout = GANSpec(d_hidden=(240, 240), d_activation="maxout", maxout_pieces=5)
    shapes = benchmark.step_matmul_shapes(b, maxout)
    assert (2 * b, 784, 1200) in shapes and (2 * b, 240, 1200) in shapes  # 240 units x 5 pieces
    # Layer by layer the same multiply-adds as a plain D of 1200 then 240 units (784x1200, 1200x240).
    assert benchmark.step_flops(b, maxout) == benchmark.step_flops(b, GANSpec(d_hidden=(1200, 240)))


def test_run_small_and_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    code = benchmark_main(["--batch-sizes", "16", "--ks", "5", "--repeats", "1", "--loop-steps", "3",
                           "--no-seed", "--cli-steps", "0", "--no-startup", "--num-seeds", "1,2",
                           "--presets", "stable", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["ceiling"]["16"]["gflops"] > 0
    modes = [(r["mode"], r["k"]) for r in result["project"]]
    assert modes == [("loop", None), ("fused", 5)]
    for row in result["project"]:
        assert row["min"] <= row["median"] <= row["max"] and row["share_of_ceiling"] > 0
    assert [row["num_seeds"] for row in result["many"]] == [1, 2]
    assert all(row["median"] > 0 for row in result["many"])
    assert [(row["preset"], row["batch"]) for row in result["presets"]] == [("stable", 128)]
    assert result["presets"][0]["median"] > 0 and result["presets"][0]["gflop_per_step"] > 0.731
    assert "steps/s" in capsys.readouterr().out


def test_bad_arguments(capsys):
    assert benchmark_main(["--repeats", "0"]) == 2
    assert "--repeats must be a positive integer, got 0" in capsys.readouterr().err
    for bad in (["--batch-sizes", "x"], ["--presets", "stable,nope"]):
        with pytest.raises(SystemExit) as e:
            benchmark_main(bad)
        assert e.value.code == 2
    assert "unknown preset 'nope'; choose from default, seed, paper, stable" in capsys.readouterr().err


def test_seed_torch_loop_runs_both_feeds():
    pytest.importorskip("torch")
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    for feed in ("preloaded", "per-item"):
        loop = benchmark.SeedTorchLoop(images, 16, feed)
        before = [p.detach().clone() for p in loop.g.parameters()]
        assert loop.steps_per_sec(5) > 0  # 5 steps cross an epoch of 4 batches
        assert any(not (a == b).all() for a, b in zip(before, loop.g.parameters()))


def test_runners_train_and_measure():
    images = jax.device_put(np.zeros((64, 28, 28, 1), np.uint8))
    for runner in (benchmark.fused_runner(images, 16, 3), benchmark.loop_runner(images, 16, 3)):
        assert runner() > 0 and runner() > 0
    row = benchmark.paired(benchmark.fused_runner(images, 16, 3), 16, 2)
    assert row["min"] <= row["median"] <= row["max"] and 0 < row["share_of_ceiling"]

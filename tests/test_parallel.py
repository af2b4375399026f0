"""Data parallelism over several (CPU) devices: the same results as one device, within rounding.

Several CPU devices exist only if XLA_FLAGS is set before JAX starts, so these tests run their
multi-device parts in subprocesses.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from flax_gan.cli import sample_main, train_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV8 = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", PYTHONPATH=ROOT)
SMALL = ["--data", "bundled", "--batch-size", "16", "--g-hidden", "32,64", "--d-hidden", "32", "--no-progress"]


def run_py(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=ENV8, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_one_two_and_eight_devices_agree():
    out = run_py("""
        import jax, numpy as np
        from flax_gan import Config, create_state, seed_keys, train_steps
        from flax_gan.parallel import make_mesh, replicated
        assert len(jax.devices()) == 8
        cfg = Config(batch_size=64, g_hidden=(32, 64), d_hidden=(32,))
        init_key, key, _ = seed_keys(0)
        images = np.random.default_rng(0).integers(0, 256, (1000, 28, 28, 1), dtype=np.uint8)
        params = {}
        for n in (1, 2, 8):
            mesh = make_mesh(n)
            state = jax.device_put(create_state(cfg, init_key), replicated(mesh))
            state, _ = train_steps(state, jax.device_put(images, replicated(mesh)), key, 200, 64,
                                   mesh if n > 1 else None)
            assert state.g_params["params"]["out"]["kernel"].sharding.mesh.size == n
            params[n] = jax.tree.leaves(jax.device_get((state.g_params, state.d_params)))
        for n in (2, 8):
            print(n, max(float(np.max(np.abs(a - b))) for a, b in zip(params[1], params[n])))
    """)
    diffs = dict(line.split() for line in out.strip().splitlines())
    # 200 steps of Adam at lr 2e-4: a different order of the gradient sums moves weights by ~1e-7.
    assert float(diffs["2"]) < 1e-5 and float(diffs["8"]) < 1e-5, diffs


def test_cli_eight_devices_matches_one(tmp_path):
    outs, logs = {}, {}
    for n in (1, 8):
        workdir = tmp_path / f"d{n}"
        argv = ["scripts/train.py", "--steps", "50", "--workdir", str(workdir), "--devices", str(n), *SMALL]
        result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=ENV8, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        logs[n] = result.stderr
        # Sampled here, on one device: a checkpoint written from 8 devices restores anywhere.
        assert sample_main(["--workdir", str(workdir), "--num", "16", "--seed", "5", "--out", str(tmp_path / f"{n}.npy")]) == 0
        outs[n] = np.load(tmp_path / f"{n}.npy")
    assert "data parallel over 8 devices: 2 images per device per step" in logs[8]
    assert "data parallel" not in logs[1]
    np.testing.assert_allclose(outs[1], outs[8], atol=1e-4)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_of_four_devices_match_one_process_of_eight(tmp_path):
    """jax.distributed over localhost: 2 processes x 4 CPU devices against 1 process x 8, through the CLI."""
    argv = ["scripts/train.py", "--steps", "60", "--ckpt-every", "30", "--log-every", "20", *SMALL]
    single = subprocess.run([sys.executable, *argv, "--workdir", str(tmp_path / "one")], cwd=ROOT, env=ENV8,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    env4 = dict(ENV8, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    multi = [*argv, "--workdir", str(tmp_path / "two"), "--coordinator", f"localhost:{free_port()}", "--num-processes", "2"]
    procs = [subprocess.Popen([sys.executable, *multi, "--process-id", str(i)], cwd=ROOT, env=env4,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert "process 0 of 2; 4 local and 8 global devices" in errs[0] and "process 1 of 2" in errs[1]
    assert "data parallel over 8 devices" in errs[1]
    two = tmp_path / "two"
    assert sorted(os.listdir(two / "checkpoints")) == ["30", "60"]
    # Only process 0 wrote metrics: one row per logged step, not two.
    assert [json.loads(l)["step"] for l in (two / "metrics.jsonl").read_text().splitlines()] == [20, 40, 60]
    for name in ("one", "two"):
        assert sample_main(["--workdir", str(tmp_path / name), "--num", "16", "--seed", "5",
                            "--out", str(tmp_path / f"{name}.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"), atol=1e-5)


def test_multi_process_flag_errors(tmp_path, capsys):
    code = train_main(["--steps", "5", "--workdir", str(tmp_path / "a"), "--coordinator", "localhost:1234", *SMALL])
    assert code == 2
    assert "needs --coordinator, --num-processes and --process-id; missing --num-processes, --process-id" in capsys.readouterr().err
    code = train_main(["--steps", "5", "--workdir", str(tmp_path / "a"), "--coordinator", "localhost:1234",
                       "--num-processes", "2", "--process-id", "2", *SMALL])
    assert code == 2 and "--process-id must be in [0, --num-processes); got 2 of 2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_cluster_environment_detection(monkeypatch):
    from flax_gan.parallel import cluster_environment

    for name in ("JAX_COORDINATOR_ADDRESS", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(name, raising=False)
    assert cluster_environment() is None
    monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task Slurm job is a single process
    assert cluster_environment() is None
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert cluster_environment() == "SLURM_NTASKS"


def test_device_errors(tmp_path, capsys):
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--steps", "5", "--workdir", str(tmp_path / "a"), "--devices", "3", *SMALL],
        cwd=ROOT, env=ENV8, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train.py: error: batch_size 16 does not split evenly over 3 devices; use a multiple of 3")
    assert not (tmp_path / "a").exists()
    code = train_main(["--steps", "5", "--workdir", str(tmp_path / "b"), "--devices", "64", *SMALL])
    assert code == 2 and "devices must be between 1 and the 1 device(s) JAX sees here (cpu), got 64" in capsys.readouterr().err
    assert train_main(["--steps", "5", "--workdir", str(tmp_path / "c"), "--devices", "0", *SMALL]) == 2
    assert "devices must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_single_process_features_refused_in_multi_process_runs(tmp_path, capsys, monkeypatch):
    import jax

    monkeypatch.setattr(jax, "process_count", lambda: 2)  # as under jax.distributed with 2 processes
    for flags, what in ((["--eval-every", "5"], "eval_every (score afterwards with scripts/evaluate.py)"),
                        (["--num-seeds", "2"], "num_seeds > 1")):
        code = train_main(["--steps", "5", "--workdir", str(tmp_path / "a"), *flags, *SMALL])
        assert code == 2
        assert f"{what} runs in single-process runs only; this run has 2 processes" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()

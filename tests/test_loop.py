"""The training loop's safety nets: divergence, damaged checkpoints, TensorBoard, next_stop."""

import glob
import logging
import os
import struct

import pytest

from conftest import restore, tree_equal
from flax_gan import checkpoint, loop
from flax_gan.config import ConfigError




def test_next_stop(small_config):
    c = small_config.replace(steps=95, log_every=10, ckpt_every=25, sample_every=40)
    assert [loop.next_stop(s, c) for s in (0, 10, 20, 25, 80, 90)] == [10, 20, 25, 30, 90, 95]


def test_divergence_stops_without_saving_the_bad_state(small_config, small_dataset):
    config = small_config.replace(lr=1e30, ckpt_every=1, log_every=1, steps=30)
    with pytest.raises(loop.Diverged, match=r"became non-finite (at|by) step (\d+).*try a smaller --lr") as e:
        loop.run(config, small_dataset, progress=False)
    steps = checkpoint.make_manager(config.workdir, read_only=True).all_steps()
    bad_step = int(str(e.value).split("step ")[1].split(" ")[0])
    assert max(steps, default=0) < bad_step
    if steps:  # what was saved is finite
        state = restore(config.workdir, config)
        assert bool(loop._all_finite(state))


def _damage(step_dir):
    """Truncates every data file of a checkpoint to half its size."""
    files = [f for f in glob.glob(os.path.join(step_dir, "**", "*"), recursive=True) if os.path.isfile(f)]
    data = [f for f in files if "/d/" in f]
    assert data, files
    for f in data:
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)


@pytest.fixture
def messages():
    """The package's log messages (its logger may not propagate to pytest's caplog once the CLI ran)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("flax_gan")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: "\n".join(r.getMessage() for r in records)
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_damaged_latest_checkpoint_falls_back_and_is_moved_aside(small_config, small_dataset, messages):
    straight = small_config.replace(workdir=small_config.workdir + "_straight", steps=50)
    loop.run(straight, small_dataset, progress=False)

    loop.run(small_config, small_dataset, progress=False)  # checkpoints 20, 30, 40
    ckpts = checkpoint.checkpoint_dir(small_config.workdir)
    _damage(os.path.join(ckpts, "40"))
    state = loop.run(small_config.replace(steps=50), small_dataset, progress=False)
    assert "checkpoint 40" in messages() and "resuming from checkpoint 30 instead of damaged checkpoint(s) 40" in messages()
    assert os.path.isdir(os.path.join(small_config.workdir, checkpoint.DAMAGED_DIR, "40"))
    assert int(state.step) == 50
    assert tree_equal(restore(small_config.workdir, small_config), restore(straight.workdir, straight))


def test_deleted_files_in_every_checkpoint_is_a_clear_error(small_config, small_dataset):
    loop.run(small_config, small_dataset, progress=False)
    ckpts = checkpoint.checkpoint_dir(small_config.workdir)
    for step in ("20", "30", "40"):
        for f in glob.glob(os.path.join(ckpts, step, "default", "**", "*"), recursive=True):
            if os.path.isfile(f) and "/d/" in f:
                os.remove(f)
    with pytest.raises(ConfigError, match=r"no usable checkpoint in .*step 40: .*step 30: .*step 20: "):
        loop.run(small_config.replace(steps=50), small_dataset, progress=False)
    assert sorted(os.listdir(ckpts)) == ["20", "30", "40"]  # nothing moved or deleted


def read_events(workdir):
    """(tag, step, kind) of every summary in the run's TensorBoard event files."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in glob.glob(os.path.join(workdir, loop.TENSORBOARD_DIR, "events.out.tfevents.*")):
        with open(path, "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                event = event_pb2.Event.FromString(f.read(length))
                f.read(4)
                for value in event.summary.value:
                    out.append((value.tag, event.step, value.WhichOneof("value")))
    return out


def test_tensorboard_has_scalars_and_sample_images(small_config, small_dataset):
    pytest.importorskip("tensorboardX")
    loop.run(small_config, small_dataset, progress=False)
    events = read_events(small_config.workdir)
    tags = {tag for tag, _, _ in events}
    assert {"d_loss", "g_loss", "d_real", "d_fake", "steps_per_sec", "samples"} <= tags
    assert sorted(step for tag, step, _ in events if tag == "d_loss") == [10, 20, 30, 40]
    assert {kind for tag, _, kind in events if tag == "samples"} == {"image"}


def test_save_cut_short_by_a_crash_is_ignored_and_cleaned(small_config, small_dataset):
    """A crash during a save leaves orbax's temporary folder: the run resumes from the last
    finished checkpoint and removes the partial one."""
    import shutil

    loop.run(small_config.replace(steps=30), small_dataset, progress=False)
    ckpts = checkpoint.checkpoint_dir(small_config.workdir)
    partial = os.path.join(ckpts, "40.orbax-checkpoint-tmp-1700000000")
    shutil.copytree(os.path.join(ckpts, "30"), partial)
    for f in glob.glob(os.path.join(partial, "**", "commit_success.txt"), recursive=True):
        os.remove(f)
    state = loop.run(small_config, small_dataset, progress=False)
    assert int(state.step) == 40
    assert not os.path.exists(partial)
    assert sorted(os.listdir(ckpts)) == ["20", "30", "40"]

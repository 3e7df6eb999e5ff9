"""Checkpoint files under faults: cut short, not a checkpoint, a full disk, a killed write."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from counterfeit.gan import CheckpointError, Trainer
from counterfeit.gan.checkpoint import load_checkpoint, save_atomic
from tests.conftest import REPO
from tests.gan.conftest import Regression, toy_config, toy_data


def _train(path, **config) -> tuple[Regression, Trainer]:
    torch.manual_seed(0)
    method = Regression()
    trainer = Trainer(method, toy_data(), toy_config(**config), checkpoint_path=path)
    trainer.fit()
    return method, trainer


def _resume(path) -> None:
    Trainer(Regression(), toy_data(), toy_config(), checkpoint_path=path).fit(resume=True)


def test_a_checkpoint_cut_in_half_is_named_cut_short_not_unsafe(tmp_path):
    path = tmp_path / "run.ckpt"
    _train(path, max_steps=5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        _resume(path)
    message = str(info.value)
    assert str(path) in message and "cut short" in message
    assert "Delete it" in message and "intact copy" in message
    assert "weights_only" not in message and "pickled" not in message


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("epoch 3: loss 0.2\n")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert f"{path} is not a checkpoint" in message and "b'epoc'" in message
    assert "weights_only" not in message and "KeyError" not in message


def test_an_empty_file_says_empty(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(path)


class Payload:
    pass


def test_a_pickled_object_is_still_refused_as_unsafe(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects") as info:
        load_checkpoint(path)
    assert "cut short" not in str(info.value)


def _save_that_fills_the_disk(obj, handle, *args, **kwargs):
    """torch.save that writes part of the file, then meets a full disk (as torch reports it)."""
    handle.write(b"PK\x03\x04" + b"\0" * 4096)
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from exc


def test_a_full_disk_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    save_atomic({"step": 1, "w": torch.arange(4.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _save_that_fills_the_disk)
    with pytest.raises(CheckpointError) as info:
        save_atomic({"step": 2, "w": torch.zeros(4)}, path)
    message = str(info.value)
    assert f"cannot write checkpoint {path}: No space left on device" in message
    assert f"free in {tmp_path}" in message
    assert "still holds the previous checkpoint, unchanged" in message
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temporary file left
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_training_goes_on_when_the_disk_fills_and_loses_nothing(tmp_path, monkeypatch, capsys):
    straight, _ = _train(tmp_path / "straight.ckpt")
    path = tmp_path / "full.ckpt"
    real_save = torch.save
    saves = []

    def save_until_full(obj, handle, *args, **kwargs):
        saves.append(obj["step"])
        if obj["step"] > 5:
            return _save_that_fills_the_disk(obj, handle)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    method, trainer = _train(path)
    monkeypatch.undo()
    assert saves == [5, 10, 15, 20] and trainer.step == 20
    warnings = capsys.readouterr().err
    assert warnings.count(f"cannot write checkpoint {path}: No space left on device") == 3
    assert "next checkpoint is tried at step 15" in warnings
    assert load_checkpoint(path)["step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.ckpt", "straight.ckpt"]
    for (name, a), (_, b) in zip(straight.state_dict().items(), method.state_dict().items()):
        assert torch.equal(a, b), name  # the run in memory went on as if nothing happened


def test_a_killed_write_leaves_a_temporary_file_that_resume_ignores_and_removes(tmp_path):
    path = tmp_path / "run.ckpt"
    straight, _ = _train(tmp_path / "straight.ckpt")
    _train(path, max_steps=10)
    stray = tmp_path / ".run.ckpt.k1ll3d.tmp"  # what save_atomic leaves when killed mid-write
    stray.write_bytes(path.read_bytes()[:1000])
    torch.manual_seed(5)
    resumed = Regression()
    result = Trainer(resumed, toy_data(), toy_config(), checkpoint_path=path).fit(resume=True)
    assert result.resumed_from == 10 and result.steps == 20
    assert not stray.exists()
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


FULL_TMPFS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from counterfeit.gan import Trainer
    from counterfeit.gan.checkpoint import load_checkpoint
    from tests.gan.conftest import Regression, toy_config, toy_data

    class Wide(Regression):
        def __init__(self):
            super().__init__()
            self.register_buffer("ballast", torch.zeros(100_000))  # a 400 kB checkpoint

    path = os.path.join(sys.argv[1], "run.ckpt")
    torch.manual_seed(0)
    trainer = Trainer(Wide(), toy_data(), toy_config(), checkpoint_path=path)
    result = trainer.fit()
    print(json.dumps({
        "steps": result.steps,
        "checkpoint_step": load_checkpoint(path)["step"],
        "files": sorted(os.listdir(sys.argv[1])),
    }))
    """
)


def test_a_real_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """A 600 kB tmpfs holds one 400 kB checkpoint, not a second beside it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) to mount a private tmpfs")
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=600k tmpfs {tmp_path}"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here: {probe.stderr.decode().strip()}")
    script = tmp_path / "fill.py"
    script.write_text(FULL_TMPFS_SCRIPT)
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(
        [
            unshare,
            "-rm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=600k tmpfs "{disk}" && exec "{sys.executable}" '
            f'"{script}" "{disk}"',
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"steps": 20, "checkpoint_step": 5, "files": ["run.ckpt"]}
    assert result.stderr.count("No space left on device") == 3
    assert "still holds the previous checkpoint, unchanged" in result.stderr

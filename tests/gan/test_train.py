"""The Trainer: resume equals uninterrupted, NaN guard, Ctrl-C, checkpoints, devices."""

import time

import pytest
import torch
from torch import nn

from counterfeit.gan import (
    Callback,
    CheckpointError,
    CollapseStop,
    ConfigError,
    NonFiniteLossError,
    Tracker,
    Trainer,
    TrainerConfig,
    TrainingInterrupted,
)
from counterfeit.gan.checkpoint import load_checkpoint, save_atomic
from tests.gan.conftest import InterruptAt, Regression, toy_config, toy_data


def test_resume_after_ctrl_c_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    straight = Regression()
    Trainer(straight, toy_data(), toy_config(), checkpoint_path=tmp_path / "a.ckpt").fit()

    torch.manual_seed(0)
    first = Regression()
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(
            first,
            toy_data(),
            toy_config(),
            callbacks=[InterruptAt(7)],
            checkpoint_path=tmp_path / "b.ckpt",
        ).fit()
    assert info.value.step == 7
    assert load_checkpoint(tmp_path / "b.ckpt")["step"] == 7

    torch.manual_seed(123)  # a fresh process would start from other RNG states
    resumed = Regression()
    result = Trainer(resumed, toy_data(), toy_config(), checkpoint_path=tmp_path / "b.ckpt").fit(
        resume=True
    )
    assert result.resumed_from == 7 and result.steps == 20
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_nan_guard_names_the_step_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    method = Regression(nan_at=12)
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(
            method, toy_data(), toy_config(log_every=4), checkpoint_path=tmp_path / "c.ckpt"
        ).fit()
    assert info.value.step == 13 and info.value.metric == "loss"  # the 13th step (index 12)
    assert "step 13" in str(info.value)
    state = load_checkpoint(tmp_path / "c.ckpt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["method"].values())


class TwoStages(Regression):
    """Reports ``stage2`` (NaN at ``stage_nan_at``) only from step 6 on, as staged methods do."""

    def __init__(self, stage_nan_at: int | None = None):
        super().__init__()
        self.stage_nan_at = stage_nan_at

    def train_step(self, batch, ctx):
        metrics = super().train_step(batch, ctx)
        if ctx.step >= 6:
            nan = ctx.step == self.stage_nan_at
            metrics["stage2"] = torch.tensor(float("nan") if nan else 1.0)
        return metrics


def test_metrics_that_appear_in_a_later_stage_are_logged_and_guarded(tmp_path):
    torch.manual_seed(0)
    result = Trainer(TwoStages(), toy_data(), toy_config(log_every=4, max_steps=12)).fit()
    assert result.last_metrics["stage2"] == 1.0 and "loss" in result.last_metrics
    with pytest.raises(NonFiniteLossError) as info:  # the window of steps 5-8 mixes stages
        Trainer(TwoStages(stage_nan_at=6), toy_data(), toy_config(log_every=4, max_steps=12)).fit()
    assert info.value.step == 7 and info.value.metric == "stage2"


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    trainer = Trainer(
        Regression(), toy_data(), toy_config(), checkpoint_path=tmp_path / "none.ckpt"
    )
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        trainer.fit(resume=True)


def test_resume_with_another_seed_is_refused(tmp_path):
    Trainer(
        Regression(), toy_data(), toy_config(max_steps=5), checkpoint_path=tmp_path / "s.ckpt"
    ).fit()
    trainer = Trainer(
        Regression(),
        toy_data(),
        toy_config(max_steps=10, seed=4),
        checkpoint_path=tmp_path / "s.ckpt",
    )
    with pytest.raises(CheckpointError, match="seed 3"):
        trainer.fit(resume=True)


def test_checkpoint_for_another_model_is_refused(tmp_path):
    Trainer(
        Regression(), toy_data(), toy_config(max_steps=5), checkpoint_path=tmp_path / "m.ckpt"
    ).fit()

    class Other(Regression):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2), nn.Linear(2, 1))

    trainer = Trainer(Other(), toy_data(), toy_config(), checkpoint_path=tmp_path / "m.ckpt")
    with pytest.raises(CheckpointError, match="does not match"):
        trainer.fit(resume=True)


def test_max_epochs_counts_batches_of_the_stream():
    result = Trainer(
        Regression(), toy_data(), toy_config(max_steps=None, max_epochs=2, checkpoint_every=None)
    ).fit()
    assert result.steps == 2 * (40 // 8)


class Slow(Callback):
    """Makes every step take at least ``seconds``."""

    every = 1

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step(self, trainer, step):
        time.sleep(self.seconds)
        return {}


def test_time_budget_stops_on_a_logging_step_with_a_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    config = toy_config(max_steps=10_000, max_minutes=0.1 / 60, log_every=4, checkpoint_every=None)
    result = Trainer(
        Regression(), toy_data(), config, callbacks=[Slow(0.02)], checkpoint_path=path
    ).fit()
    assert "time budget" in result.stopped_early
    assert 4 <= result.steps < 100 and result.steps % 4 == 0
    assert load_checkpoint(path)["step"] == result.steps
    # A time budget is not a verdict on the model: resuming gets a fresh budget and goes on.
    resumed = Trainer(
        Regression(), toy_data(), config, callbacks=[Slow(0.02)], checkpoint_path=path
    ).fit(resume=True)
    assert "time budget" in resumed.stopped_early
    assert load_checkpoint(path)["step"] >= result.steps + 4


def test_config_needs_exactly_one_length():
    with pytest.raises(ValueError, match="exactly one"):
        TrainerConfig(max_steps=3, max_epochs=2)
    with pytest.raises(ValueError, match="exactly one"):
        TrainerConfig()


def test_cuda_on_a_cpu_machine_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        Trainer(Regression(), toy_data(), toy_config(device="cuda"))


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.ckpt"
    save_atomic({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_atomic({"step": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.ckpt"]


class Payload:
    pass


def test_checkpoints_with_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_metrics_reach_mlflow_every_log_interval():
    from mlflow import MlflowClient

    with Tracker(experiment="trainer-test") as tracker:
        Trainer(
            Regression(),
            toy_data(),
            toy_config(max_steps=9, checkpoint_every=None),
            tracker=tracker.scoped("toy/"),
        ).fit()
    client = MlflowClient()
    history = client.get_metric_history(tracker.run_id, "toy/loss")
    assert [m.step for m in history] == [3, 6, 9]
    assert all(m.value >= 0 for m in history)
    assert client.get_metric_history(tracker.run_id, "toy/lr/net")[-1].value == pytest.approx(
        0.05 * 0.5**2
    )
    assert client.get_run(tracker.run_id).info.status == "FINISHED"


class ScriptedCollapse(CollapseStop):
    """A collapse guard whose score at each check is given in advance, by step."""

    def __init__(self, scores: dict[int, float]) -> None:
        super().__init__(None, every=4, drop=0.2, name=None)
        self.scores = scores
        self.step = 0

    def on_step(self, trainer, step):
        self.step = step
        return super().on_step(trainer, step)

    def measure(self, method):
        return self.scores[self.step]


def test_a_collapse_guard_decides_alike_across_a_resume(tmp_path):
    """The score falls between the checks at steps 4 and 8; the run stops at 8 either way."""
    scores = {4: 0.9, 8: 0.5, 12: 0.5, 16: 0.5}
    torch.manual_seed(0)
    straight = Regression()
    reference = Trainer(
        straight,
        toy_data(),
        toy_config(checkpoint_every=None),
        callbacks=[ScriptedCollapse(scores)],
    ).fit()
    assert reference.stopped_early.startswith("collapse at step 8") and reference.steps == 8

    path = tmp_path / "run.ckpt"
    torch.manual_seed(0)
    first = toy_config(max_steps=6, checkpoint_every=None)
    Trainer(
        Regression(), toy_data(), first, callbacks=[ScriptedCollapse(scores)], checkpoint_path=path
    ).fit()
    resumed = Regression()
    result = Trainer(
        resumed,
        toy_data(),
        toy_config(checkpoint_every=None),
        callbacks=[ScriptedCollapse(scores)],
        checkpoint_path=path,
    ).fit(resume=True)
    assert result.resumed_from == 6
    assert result.stopped_early == reference.stopped_early and result.steps == 8
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name  # both restored to the weights of step 4

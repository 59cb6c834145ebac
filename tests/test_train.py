"""Training (huenet.train): learning, run-folder contents, resume (also after kill -9), DDP, non-finite steps."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from huenet.colortransfer import gan as gan_module, runlog
from huenet.colortransfer.checkpoint import load_checkpoint
from huenet.colortransfer.cli import RunError, UsageError
from huenet.colortransfer.options import TrainConfig, build_parser
from huenet.colortransfer.synthetic import SyntheticImages
from huenet.colortransfer.train import NonFiniteLossError, train

ROOT = Path(__file__).resolve().parents[1]
# Tiny but real runs: 32 px images, 8-channel models, 64-bin losses, a small synthetic set.
TINY = dict(image_size=32, batch_size=4, ngf=8, bins=64, cond_bins=16, synthetic_images=48)
TINY_FLAGS = ["--image-size", "32", "--batch-size", "2", "--ngf", "8", "--bins", "32", "--cond-bins", "8",
              "--synthetic-images", "40", "--num-workers", "0"]


def _steps(run_dir):
    return [r for r in runlog.read_metrics(run_dir) if r["kind"] == "step"]


def _cli(args, env=None, **kwargs):
    """Run a huenet module in a fresh interpreter from the repository root."""
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)


def test_short_run_learns_and_fills_the_run_folder(tmp_path):
    out = tmp_path / "run"
    summary = train(TrainConfig(out=str(out), lr=1e-3, epochs=8, sample_every=20, checkpoint_every=25, **TINY))
    # 48 images -> 43 for training -> 10 steps per epoch of 4.
    assert summary["steps"] == 80 and summary["epochs_completed"] == 8
    epochs = [r for r in runlog.read_metrics(out) if r["kind"] == "epoch"]
    assert len(epochs) == 8
    # Scored on the same fixed validation pairs each epoch: the colour loss goes down...
    assert epochs[-1]["val_hist"] < 0.8 * epochs[0]["val_hist"]
    first, last = _steps(out)[:20], _steps(out)[-20:]
    assert sum(r["hist"] for r in last) < sum(r["hist"] for r in first)
    # ...and the model's hue EMD to the targets ends clearly below the untouched source's.
    assert summary["val_hue_emd"] < 0.8 * summary["val_hue_emd_identity"]

    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "summary.json",
                 "plots/losses.png", "plots/hue_histograms.png", "plots/joint_histograms.png",
                 "samples/step_0000020.png", "samples/step_0000080.npz"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["lr"] == 1e-3
    assert [r["step"] for r in _steps(out)] == list(range(1, 81))
    state = load_checkpoint(out)
    assert {"generator", "discriminator", "opt_g", "opt_d", "scaler", "rng", "epoch", "step"} <= set(state)
    assert (state["step"], state["epoch"], state["epoch_step"]) == (80, 8, 0)
    assert not list(out.glob("*.tmp"))


def test_resume_continues_and_checks_the_config(tmp_path):
    out = str(tmp_path / "run")
    cfg = dict(out=out, max_steps=6, checkpoint_every=4, sample_every=100, **TINY)
    train(TrainConfig(**cfg))
    summary = train(TrainConfig(**{**cfg, "max_steps": 13}))
    assert summary["resumed_from"] == 6 and summary["steps"] == 13
    # Every step logged exactly once across the two invocations; the second crossed an epoch end (step 10).
    assert [r["step"] for r in _steps(out)] == list(range(1, 14))
    assert [r["step"] for r in runlog.read_metrics(out) if r["kind"] == "epoch"] == [10]

    with pytest.raises(RunError, match="--lr 0.0002 -> 0.001"):
        train(TrainConfig(**{**cfg, "max_steps": 14, "lr": 1e-3}))
    summary = train(TrainConfig(**{**cfg, "max_steps": 3, "resume": False}))
    assert summary["resumed_from"] is None
    assert [r["step"] for r in _steps(out)] == [1, 2, 3]


def test_resume_after_kill_9(tmp_path):
    out = tmp_path / "run"
    command = ["-m", "huenet.train", "--out", str(out), *TINY_FLAGS, "--checkpoint-every", "2",
               "--sample-every", "1000"]
    proc = subprocess.Popen([sys.executable, *command, "--max-steps", "100000"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = _steps(out)
            if (out / "checkpoint.pt").exists() and done and done[-1]["step"] >= 7:
                break
            assert proc.poll() is None, "training exited before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint after 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = load_checkpoint(out)["step"]
    assert killed_at >= 2

    # The same command (with a reachable --max-steps) continues from the checkpoint.
    result = _cli([*command, "--max-steps", str(killed_at + 6)], timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"resuming {str(out)!r} from step {killed_at}" in result.stderr
    assert [r["step"] for r in _steps(out)] == list(range(1, killed_at + 7))
    assert load_checkpoint(out)["step"] == killed_at + 6
    assert not list(out.glob("*.tmp"))


def test_ddp_two_cpu_processes(tmp_path):
    out = tmp_path / "run"
    result = _cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "huenet.train",
                   "--out", str(out), *TINY_FLAGS, "--max-steps", "4", "--checkpoint-every", "2",
                   "--sample-every", "2", "--device", "cpu"], timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    # Only rank 0 writes: each step is logged once, one summary line is printed.
    assert [r["step"] for r in _steps(out)] == [1, 2, 3, 4]
    assert result.stderr.count("huenet.train: 4 steps") == 1
    state = load_checkpoint(out)
    assert state["world_size"] == 2 and state["step"] == 4 and len(state["rng"]) == 2
    # DistributedSampler: 36 training images / 2 processes / batch 2 = 9 steps per epoch.
    assert state["epoch"] == 0 and state["epoch_step"] == 4


def test_nonfinite_losses_are_skipped_then_stop_the_run(tmp_path, monkeypatch):
    real_terms = gan_module.HueNetLoss.terms
    calls = {"n": 0}

    def sometimes_nan(self, *args):
        calls["n"] += 1
        terms = real_terms(self, *args)
        if calls["n"] in bad:
            terms["hist"] = terms["hist"] * float("nan")
        return terms

    monkeypatch.setattr(gan_module.HueNetLoss, "terms", sometimes_nan)
    bad = {2, 3}
    summary = train(TrainConfig(out=str(tmp_path / "a"), max_steps=5, sample_every=100, max_nonfinite=3, **TINY))
    assert summary["steps"] == 5 and summary["nonfinite_steps"] == 2
    assert [r["nonfinite"] for r in _steps(tmp_path / "a")] == [False, True, True, False, False]
    state = load_checkpoint(tmp_path / "a")
    assert all(torch.isfinite(t).all() for t in state["generator"].values() if t.is_floating_point())

    calls["n"] = 0
    bad = set(range(2, 100))
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps had a non-finite loss"):
        train(TrainConfig(out=str(tmp_path / "b"), max_steps=20, sample_every=100, max_nonfinite=3, **TINY))


def test_amp_on_cpu_warns_and_trains_in_fp32(tmp_path):
    with pytest.warns(UserWarning, match="--amp works on CUDA only"):
        summary = train(TrainConfig(out=str(tmp_path / "run"), max_steps=2, amp=True, sample_every=100, **TINY))
    assert summary["steps"] == 2


@pytest.mark.gpu
def test_amp_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: --amp is a CUDA feature")
    summary = train(TrainConfig(out=str(tmp_path / "run"), max_steps=4, amp=True, device="cuda",
                                sample_every=100, **TINY))
    assert summary["nonfinite_steps"] == 0
    assert load_checkpoint(tmp_path / "run")["scaler"]["scale"] > 0


def test_bad_settings_name_the_flag(tmp_path):
    with pytest.raises(RunError, match="--image-size must be >= 32"):
        train(TrainConfig(out=str(tmp_path), image_size=16))
    with pytest.raises(RunError, match="--batch-size 64 x 1 process"):
        train(TrainConfig(out=str(tmp_path), **{**TINY, "batch_size": 64}))
    with pytest.raises(RunError, match="--data: the folder .* does not exist"):
        train(TrainConfig(out=str(tmp_path), data=str(tmp_path / "missing")))
    # The library's checks, in the flags' names.
    with pytest.raises(UsageError, match="^--mi-channels must be a non-empty string .*; got 'q'$"):
        train(TrainConfig(out=str(tmp_path), mi_channels="q"))


def test_cli_help_lists_the_issue_flags():
    text = build_parser().format_help()
    for flag in ("--data", "--out", "--image-size", "--batch-size", "--epochs", "--max-steps", "--lr", "--bins",
                 "--bandwidth", "--colorspace", "--lambda-gan", "--lambda-mi", "--lambda-hist", "--device", "--amp",
                 "--seed", "--num-workers", "--backend", "--ngf", "--resume", "--no-resume"):
        assert flag in text, flag
    d = build_parser().parse_args([])
    assert (d.lambda_gan, d.lambda_mi, d.lambda_hist, d.colorspace, d.resume) == (1.0, 1.0, 100.0, "hsv", True)


def test_cli_reports_an_unavailable_backend(tmp_path):
    # Without the Triton interpreter, the Triton backend cannot run on CPU tensors: the core raises, and the
    # CLI must show that message as an error, not a traceback from inside the first step.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "huenet.train", "--out", str(tmp_path), *TINY_FLAGS,
                             "--max-steps", "1", "--backend", "triton", "--device", "cpu"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        pytest.skip("the triton backend runs on this machine's CPU, so there is no error to report")
    assert result.returncode == 1
    assert result.stderr.startswith("huenet.train: error: soft_histogram: backend='triton'"), result.stderr
    assert "Traceback" not in result.stderr


def test_options_yuv_lsgan_order2_dropout_folder_data(tmp_path):
    # The non-default branches run end to end on an image folder: the official code's colour space, LSGAN,
    # the RMS EMD and dropout; then EMDs on H, S and V with unweighted hue.
    data = tmp_path / "data"
    data.mkdir()
    images = SyntheticImages(12, 40, seed=5)
    for i in range(12):
        images.load(i).save(data / f"{i}.png")
    summary = train(TrainConfig(out=str(tmp_path / "a"), data=str(data), colorspace="yuv", gan_mode="lsgan",
                                emd_order=2, dropout=0.5, max_steps=3, sample_every=100, **TINY))
    assert summary["steps"] == 3 and summary["nonfinite_steps"] == 0
    summary = train(TrainConfig(out=str(tmp_path / "b"), data=str(data), hist_channels="hsv", hue_weight=None,
                                max_steps=2, sample_every=100, **TINY))
    assert summary["steps"] == 2 and summary["nonfinite_steps"] == 0

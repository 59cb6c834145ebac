"""Training (huenet.train): learning, run-folder contents, resume (also after kill -9), DDP, non-finite steps."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY
from helpers import bad_checkpoints, pil_to_tensor
from huenet.colortransfer import runlog
from huenet.colortransfer.cli import RunError, UsageError
from huenet.colortransfer.data.synthetic import SyntheticImages
from huenet.colortransfer.training import gan as gan_module
from huenet.colortransfer.training import train as train_module
from huenet.colortransfer.training.checkpoint import load_checkpoint
from huenet.colortransfer.training.options import TrainConfig, build_parser, config_from_args, resolve_task_defaults
from huenet.colortransfer.training.train import NonFiniteLossError, train

ROOT = Path(__file__).resolve().parents[1]
TINY_FLAGS = [
    "--image-size",
    "32",
    "--batch-size",
    "2",
    "--ngf",
    "8",
    "--bins",
    "32",
    "--cond-bins",
    "8",
    "--synthetic-images",
    "40",
    "--num-workers",
    "0",
]


def _steps(run_dir):
    return [r for r in runlog.read_metrics(run_dir) if r["kind"] == "step"]


def _cli(args, env=None, **kwargs):
    """Run a huenet module in a fresh interpreter from the repository root."""
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)


def test_short_run_learns_and_fills_the_run_folder(tmp_path):
    out = tmp_path / "run"
    # Without the global mapping, which starts at a Reinhard-quality match, the colours must be learnt.
    summary = train(
        TrainConfig(
            out=str(out), lr=1e-3, epochs=8, sample_every=20, checkpoint_every=25, global_mapping="none", **TINY
        )
    )
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

    for name in (
        "config.json",
        "checkpoint.pt",
        "metrics.jsonl",
        "summary.json",
        "plots/losses.png",
        "plots/hue_histograms.png",
        "plots/joint_histograms.png",
        "samples/step_0000020.png",
        "samples/step_0000080.npz",
    ):
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
    command = [
        "-m",
        "huenet.train",
        "--out",
        str(out),
        *TINY_FLAGS,
        "--checkpoint-every",
        "2",
        "--sample-every",
        "1000",
    ]
    proc = subprocess.Popen(
        [sys.executable, *command, "--max-steps", "100000"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    result = _cli(
        [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "huenet.train",
            "--out",
            str(out),
            *TINY_FLAGS,
            "--max-steps",
            "4",
            "--checkpoint-every",
            "2",
            "--sample-every",
            "2",
            "--device",
            "cpu",
        ],
        timeout=180,
    )
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
    summary = train(
        TrainConfig(out=str(tmp_path / "run"), max_steps=4, amp=True, device="cuda", sample_every=100, **TINY)
    )
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
    for flag in (
        "--data",
        "--out",
        "--image-size",
        "--batch-size",
        "--epochs",
        "--max-steps",
        "--lr",
        "--bins",
        "--bandwidth",
        "--colorspace",
        "--lambda-gan",
        "--lambda-mi",
        "--lambda-hist",
        "--device",
        "--amp",
        "--seed",
        "--num-workers",
        "--backend",
        "--ngf",
        "--resume",
        "--no-resume",
    ):
        assert flag in text, flag
    d = resolve_task_defaults(config_from_args([]))
    assert (d.task, d.lambda_gan, d.lambda_mi, d.lambda_hist, d.colorspace, d.resume, d.epochs) == (
        "transfer",
        1.0,
        4.0,
        100.0,
        "hsv",
        True,
        6,
    )
    assert resolve_task_defaults(config_from_args(["--task", "colorize"])).epochs == 3
    assert resolve_task_defaults(config_from_args(["--task", "colorize", "--epochs", "5"])).epochs == 5


def test_cli_reports_an_unavailable_backend(tmp_path):
    # Without the Triton interpreter, the Triton backend cannot run on CPU tensors: the core raises, and the
    # CLI must show that message as an error, not a traceback from inside the first step.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "huenet.train",
            "--out",
            str(tmp_path),
            *TINY_FLAGS,
            "--max-steps",
            "1",
            "--backend",
            "triton",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The kernels never run on CPU tensors without the interpreter: a success here is a silent fallback or a
    # broken check, so it fails the test rather than skipping it.
    assert result.returncode == 2  # a flag that cannot work here: a usage error, found before training starts
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
    summary = train(
        TrainConfig(
            out=str(tmp_path / "a"),
            data=str(data),
            colorspace="yuv",
            gan_mode="lsgan",
            emd_order=2,
            dropout=0.5,
            max_steps=3,
            sample_every=100,
            **TINY,
        )
    )
    assert summary["steps"] == 3 and summary["nonfinite_steps"] == 0
    summary = train(
        TrainConfig(
            out=str(tmp_path / "b"),
            data=str(data),
            hist_channels="hsv",
            hue_weight=None,
            max_steps=2,
            sample_every=100,
            **TINY,
        )
    )
    assert summary["steps"] == 2 and summary["nonfinite_steps"] == 0


# ------------------------------------------------------------------------------------------------ hardening
def _main(argv, capsys):
    """Run the train CLI in this process; returns (exit status, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        train_module.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _one_clean_line(err):
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_bad_numbers_are_usage_errors_before_anything_runs(tmp_path, capsys):
    for fraction in ("0", "1", "-0.2", "1.5"):
        code, err = _main(["--out", str(tmp_path / "v"), "--val-fraction", fraction], capsys)
        assert code == 2 and _one_clean_line(err).startswith(
            f"huenet.train: error: --val-fraction must be in (0, 1); got {float(fraction)}"
        ), err
    # 65536² x 8 images: terabytes of activations. Refused from the estimate: nothing is allocated or loaded.
    code, err = _main(["--out", str(tmp_path / "m"), "--image-size", "65536"], capsys)
    assert code == 2 and re.match(
        r"huenet.train: error: --image-size 65536 with --batch-size 8 needs about "
        r"[\d.]+ GiB for one training step, but only [\d.]+ GiB of RAM is free",
        err,
    ), err
    assert _one_clean_line(err)
    assert not (tmp_path / "m").exists()


def test_memory_estimate_grows_with_the_batch_and_the_pixels():
    # The estimate must scale like the activations it counts: linear in the batch and (at a fixed depth)
    # in the pixels; 64² x 8 at ngf 16 is tens of MB, not GB.
    one, four = gan_module.step_bytes(1, 64, 16, 16, 32, 256), gan_module.step_bytes(4, 64, 16, 16, 32, 256)
    assert 3.5 < four / one <= 4.0
    assert 10 * 2**20 < gan_module.step_bytes(8, 64, 16, 16, 32, 256) < 500 * 2**20


def test_a_corrupt_checkpoint_in_the_run_folder_says_how_to_start_over(tmp_path, capsys):
    good = tmp_path / "good"
    train(TrainConfig(out=str(good), max_steps=1, sample_every=100, **TINY))
    capsys.readouterr()
    flags = [
        "--image-size",
        "32",
        "--batch-size",
        "4",
        "--ngf",
        "8",
        "--bins",
        "64",
        "--cond-bins",
        "16",
        "--synthetic-images",
        "48",
        "--max-steps",
        "1",
        "--sample-every",
        "100",
    ]
    for kind, path in bad_checkpoints(tmp_path, good / "checkpoint.pt").items():
        code, err = _main(["--out", str(path.parent), *flags], capsys)
        assert code == 1, (kind, err)
        assert str(path) in _one_clean_line(err) and "--no-resume" in err and "delete the folder" in err, (kind, err)
        assert path.exists(), "a checkpoint the user may want back is never deleted without --no-resume"
    # --no-resume starts over there.
    summary = train(TrainConfig(out=str(path.parent), max_steps=1, sample_every=100, resume=False, **TINY))
    assert summary["steps"] == 1 and load_checkpoint(path.parent)["step"] == 1


def test_a_finished_run_rerun_has_nothing_to_do(tmp_path):
    out = tmp_path / "run"
    command = ["-m", "huenet.train", "--out", str(out), *TINY_FLAGS, "--max-steps", "2", "--sample-every", "100"]
    assert _cli(command, timeout=300).returncode == 0
    log = (out / "metrics.jsonl").read_text()
    result = _cli(command, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stderr and "resuming" not in result.stderr, result.stderr
    assert (out / "metrics.jsonl").read_text() == log


def _weights(state):
    return {f"{net}.{k}": v for net in ("generator", "discriminator") for k, v in state[net].items()}


def test_resume_is_exact_with_dropout_and_workers(tmp_path):
    # N straight steps against N/2 steps, then a resume to N: the same weights and logged losses, bit for bit.
    # Dropout draws from the global RNG that resume restores, and the workers' seeds must not draw from it.
    # 10 steps per epoch here: the resume is mid-epoch and the run then crosses an epoch end.
    cfg = dict(TINY, dropout=0.5, num_workers=2, sample_every=100, checkpoint_every=100)
    train(TrainConfig(out=str(tmp_path / "straight"), max_steps=12, **cfg))
    train(TrainConfig(out=str(tmp_path / "resumed"), max_steps=6, **cfg))
    summary = train(TrainConfig(out=str(tmp_path / "resumed"), max_steps=12, **cfg))
    assert summary["resumed_from"] == 6
    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    keys = ("step", "loss_g", "loss_d", "adv", "hist", "mi")
    losses = [[r[k] for k in keys] for r in _steps(tmp_path / "straight")]
    assert len(losses) == 12 and losses == [[r[k] for k in keys] for r in _steps(tmp_path / "resumed")]
    # The dropout does draw (so the comparison above can fail): without it the weights differ.
    train(TrainConfig(out=str(tmp_path / "other"), max_steps=12, **{**cfg, "dropout": 0.0}))
    c = _weights(load_checkpoint(tmp_path / "other"))
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_a_step_boundary_and_writes_the_checkpoint(tmp_path, signum, code):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "huenet.train",
        "--out",
        str(out),
        *TINY_FLAGS,
        "--checkpoint-every",
        "1000",
        "--sample-every",
        "1000",
        "--max-steps",
        "100000",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (_steps(out) and _steps(out)[-1]["step"] >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, "training did not reach step 3"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    step = load_checkpoint(out)["step"]
    assert f"huenet.train: interrupted at step {step}; run the same command to resume" in err.splitlines()
    assert _steps(out)[-1]["step"] == step >= 3  # every logged step is in the checkpoint


def test_transparent_pixels_take_no_part_in_the_losses():
    # With an alpha of 0 on the right half, the loss terms are those of the left half alone: a weighted
    # histogram with zero weights is the histogram of the other pixels.
    from huenet.losses import HueNetLoss

    gen = torch.Generator().manual_seed(0)
    out, src, tgt = torch.rand(3, 2, 3, 24, 32, generator=gen).unbind(0)
    alpha = torch.zeros(2, 1, 24, 32)
    alpha[..., :16] = 1
    loss = HueNetLoss(bins=32)
    weighted = loss.terms(out, src, tgt, gan_module.pixel_weight(alpha), gan_module.pixel_weight(alpha))
    half = loss.terms(out[..., :16], src[..., :16], tgt[..., :16])
    for key in ("hist", "mi"):
        torch.testing.assert_close(weighted[key], half[key], rtol=1e-4, atol=1e-6)
        assert not torch.allclose(half[key], loss.terms(out, src, tgt)[key], rtol=1e-3)
    # Opaque alphas weight nothing; a crop with no opaque pixel counts all of its pixels.
    assert gan_module.pixel_weight(torch.ones(2, 1, 4, 4)) is None
    assert torch.equal(
        gan_module.pixel_weight(alpha * torch.tensor([0.0, 1.0])[:, None, None, None])[0], torch.ones(1, 24, 32)
    )


def test_16_bit_rgba_and_undecodable_training_images(tmp_path):
    # A folder of 16-bit PNG / TIFF (grey and RGB), RGBA and a JPEG that fails only when decoded: training
    # runs, every skipped image is counted in the summary, and the warning is one clean line.
    from huenet.colortransfer.data.images import write_image

    data = tmp_path / "data"
    data.mkdir()
    images = SyntheticImages(12, 40, seed=5)
    for i in range(12):
        rgb = pil_to_tensor(images.load(i))
        if i % 4 == 0:
            write_image(data / f"{i}.png", rgb, bits=16)
        elif i % 4 == 1:
            write_image(data / f"{i}.tif", rgb, bits=16)
        elif i % 4 == 2:
            alpha = torch.ones(1, 40, 40)
            alpha[..., :20] = 0
            write_image(data / f"{i}.png", rgb, alpha)
        else:
            Image.fromarray((rgb[0].numpy() * 65535).astype(np.uint16)).save(data / f"{i}.png")
    buffer = io.BytesIO()
    images.load(0).save(buffer, format="JPEG")
    (data / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    result = _cli(
        [
            "-m",
            "huenet.train",
            "--out",
            str(tmp_path / "run"),
            "--data",
            str(data),
            *TINY_FLAGS,
            "--max-steps",
            "12",
            "--sample-every",
            "100",
            "--num-workers",
            "1",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["nonfinite_steps"] == 0 and summary["unreadable"] == ["cut.jpg"], summary
    assert "unreadable images skipped: 1" in result.stderr
    # Grey 16-bit targets may add the losses' "no hue" warning; the unreadable file is warned about exactly once,
    # and every warning is one line of the program's own.
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert all(line.startswith("huenet.train: warning: ") for line in warnings), warnings
    unreadable = [line for line in warnings if "unreadable image" in line]
    assert len(unreadable) == 1 and unreadable[0].startswith(
        "huenet.train: warning: skipping unreadable image 'cut.jpg'"
    )

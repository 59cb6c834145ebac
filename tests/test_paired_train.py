"""The paired tasks end to end: the GAN step's terms, training and resume per task, evaluate, transfer, bad input."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from huenet.colortransfer import runlog
from huenet.colortransfer.cli import RunError, UsageError
from huenet.colortransfer.commands import evaluate, transfer
from huenet.colortransfer.training.checkpoint import load_generator
from huenet.colortransfer.training.gan import HueNetGAN
from huenet.colortransfer.training.models import HueNetGenerator, PatchDiscriminator
from huenet.colortransfer.training.options import TrainConfig, config_from_args
from huenet.colortransfer.training.train import train
from huenet.losses import HueNetLoss

TINY = dict(image_size=32, batch_size=4, ngf=8, bins=64, cond_bins=16, synthetic_images=48, sample_every=100)


def _steps(run_dir):
    return [r["step"] for r in runlog.read_metrics(run_dir) if r["kind"] == "step"]


def test_paired_step_terms_add_up():
    torch.manual_seed(0)
    G, D = HueNetGenerator(32, ngf=4, cond_bins=8), PatchDiscriminator(4, conditional=True)
    loss = HueNetLoss("yuv", bins=16, hist_channels="uv", mi_channels="y", lambda_hist=20.0, lambda_mi=0.5)
    gan = HueNetGAN(G, D, loss, lambda_gan=2.0, lambda_l1=7.0)
    g = torch.Generator().manual_seed(1)
    inputs, truth = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    record = gan.step(inputs, truth, update=False)
    with torch.no_grad():
        output = G(inputs, G.target_statistics(truth))
    # L1 to the ground truth, by hand; the total is the weighted sum of the logged terms.
    torch.testing.assert_close(record["l1"], (output - truth).abs().mean())
    want = 2.0 * record["adv"] + 7.0 * record["l1"] + 0.5 * record["mi"] + 20.0 * record["hist"]
    torch.testing.assert_close(record["loss_g"], want)
    terms = loss.terms(output, inputs, truth)
    torch.testing.assert_close(record["hist"], terms["hist"].mean())
    torch.testing.assert_close(record["mi"], terms["mi"].mean())
    # An unconditional D (transfer) has no ground truth to take an L1 to.
    with pytest.raises(ValueError, match="lambda_l1"):
        HueNetGAN(G, PatchDiscriminator(4), loss, lambda_l1=1.0)


@pytest.mark.parametrize("task,lambda_hist", [("colorize", 20.0), ("edges2photo", 100.0)])
def test_paired_run_trains_and_resumes(tmp_path, task, lambda_hist):
    out = tmp_path / "run"
    cfg = dict(task=task, out=str(out), checkpoint_every=4, **TINY)
    train(TrainConfig(max_steps=6, **cfg))
    summary = train(TrainConfig(max_steps=12, **cfg))
    # 48 images -> 43 for training -> 10 steps per epoch; each step logged once across the two invocations.
    assert summary["resumed_from"] == 6 and summary["steps"] == 12
    assert _steps(out) == list(range(1, 13))
    config = json.loads((out / "config.json").read_text())
    assert (config["task"], config["colorspace"], config["lambda_hist"]) == (task, "yuv", lambda_hist)
    epoch = [r for r in runlog.read_metrics(out) if r["kind"] == "epoch"][0]
    assert np.isfinite(epoch["val_psnr"]) and 0 < epoch["val_ssim"] <= 1
    assert "val_psnr" in summary and summary["nonfinite_steps"] == 0
    # colorize keeps the grey input's luma (the checkpoint rebuilds G so); edges2photo has no lightness to keep.
    assert load_generator(out)[0].keep_luma == (task == "colorize")
    # The grid has four columns: input | reference | output | ground truth, 32-px tiles enlarged to 128 px,
    # under a header row of column labels.
    grid = Image.open(out / "samples" / "step_0000012.png")
    assert grid.size[0] == 4 * 128 + 3 * 2 and grid.size[1] > 4 * 128 + 3 * 2
    # The task is part of the experiment: resuming as another task is refused.
    with pytest.raises(RunError, match="--task"):
        train(
            TrainConfig(
                **{
                    **cfg,
                    "task": "transfer" if task != "transfer" else "colorize",
                    "max_steps": 13,
                    "lambda_hist": lambda_hist,
                    "colorspace": "yuv",
                }
            )
        )


@pytest.fixture(scope="module")
def colorize_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("colorize")
    train(TrainConfig(task="colorize", out=str(out), max_steps=4, **TINY))
    return out


def _photo(path, size=(40, 30)):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _edges(path, size=(40, 30)):
    array = np.full((size[1], size[0], 3), 255, np.uint8)
    array[10, :] = 0
    array[:, 20] = 0
    Image.fromarray(array).save(path)
    return path


def test_evaluate_a_paired_run(colorize_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    evaluate.main(["--checkpoint", str(colorize_run), "--json", str(out), "--exemplar", "other"])
    printed = capsys.readouterr().out
    assert "colorize pairs (reference: another photo)" in printed
    assert "| identity |" in printed and "PSNR to truth" in printed
    result = json.loads(out.read_text())
    assert result["task"] == "colorize" and result["exemplar"] == "other"
    grey = result["results"]["identity"]
    # The grey input keeps its own lightness exactly.
    assert grey["lightness_ssim"]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite(result["results"]["huenet"]["psnr"]["mean"])


def test_transfer_with_a_paired_checkpoint(colorize_run, tmp_path, capsys):
    photo, edges = _photo(tmp_path / "photo.png"), _edges(tmp_path / "edges.png")
    dest = tmp_path / "out.png"
    transfer.main(
        ["--checkpoint", str(colorize_run), "--source", str(photo), "--target", str(photo), "--out", str(dest)]
    )
    assert "converted to grey" in capsys.readouterr().err
    assert Image.open(dest).size == (40, 30)
    refused = "--source .*edges.png'.*this is a colorize checkpoint.*looks like an edge map"
    with pytest.raises(SystemExit) as exit_info:
        transfer.main(
            [
                "--checkpoint",
                str(colorize_run),
                "--source",
                str(edges),
                "--target",
                str(photo),
                "--out",
                str(tmp_path / "o2.png"),
            ]
        )
    assert exit_info.value.code == 1
    assert re.search(refused, capsys.readouterr().err.strip().splitlines()[-1])
    assert not (tmp_path / "o2.png").exists()


def test_paired_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_from_args(["--task", "colourize"])
    assert exit_info.value.code == 2
    assert "--task must be one of transfer, colorize, edges2photo; got 'colourize'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--lambda-l1 needs a paired task"):
        train(TrainConfig(out=str(tmp_path / "t"), lambda_l1=100.0, **TINY))
    data = tmp_path / "ab"
    data.mkdir()
    for k in range(3):
        Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(data / f"{k}.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(data / "odd.png")
    with pytest.raises(RunError, match="--data: .*odd.png' is 30x20"):
        train(TrainConfig(task="edges2photo", data=str(data), out=str(tmp_path / "r"), **TINY))

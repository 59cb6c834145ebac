"""The evaluate and plots command lines, on a tiny trained run (transfer: test_transfer_cli.py)."""
import json

import numpy as np
import pytest
from PIL import Image

from huenet.colortransfer import evaluate, plots, runlog
from huenet.colortransfer.options import TrainConfig
from huenet.colortransfer.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(out=str(out), image_size=32, batch_size=4, ngf=8, bins=64, cond_bins=16,
                      synthetic_images=60, epochs=6, lr=1e-3, sample_every=50))
    return out


def _image(path, size, colour):
    rng = np.random.default_rng(sum(size))
    array = np.clip(np.array(colour) + rng.integers(-40, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    array[size[1] // 3: size[1] // 2] //= 3  # a dark band: structure to keep
    Image.fromarray(array).save(path)
    return path


def test_evaluate_against_baselines(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    evaluate.main(["--checkpoint", str(run_dir), "--json", str(out)])
    printed = capsys.readouterr().out
    for method in ("huenet", "identity", "reinhard", "histogram_matching", "mkl"):
        assert f"| {method} |" in printed
    result = json.loads(out.read_text())
    assert result["pairs"] == 6  # 10% of 60 images
    scores = {m: {k: v["mean"] for k, v in r.items()} for m, r in result["results"].items()}
    # Identity is the reference point: perfect structure, no colour change.
    assert scores["identity"]["v_mi_distance"] == pytest.approx(0, abs=1e-6)
    assert scores["identity"]["v_ssim"] == pytest.approx(1, abs=1e-6)
    # Every colour-transfer method moves the hues towards the target's, the tiny trained model included
    # (after 60 steps; its 256-bin intersection is not yet better than the source's, the baselines' is).
    for method in ("huenet", "reinhard", "histogram_matching"):
        assert scores[method]["hue_emd"] < 0.8 * scores["identity"]["hue_emd"], method
    for method in ("reinhard", "histogram_matching", "mkl"):
        assert scores[method]["ab_swd"] < scores["identity"]["ab_swd"], method
    for method in ("reinhard", "histogram_matching"):
        assert scores[method]["hue_intersection"] > scores["identity"]["hue_intersection"], method
    assert scores["huenet"]["v_ssim"] > 0.3


def test_evaluate_on_another_folder(run_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(12):
        _image(data / f"{i}.png", (48, 40), [(200, 30, 30), (30, 200, 30), (30, 30, 200)][i % 3])
    evaluate.main(["--checkpoint", str(run_dir), "--data", str(data), "--limit", "1"])
    assert "1 validation pairs of " + str(data) in capsys.readouterr().out
    assert json.loads((run_dir / runlog.EVALUATION_NAME).read_text())["data"] == str(data)
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate.main(["--checkpoint", str(run_dir), "--data", str(tmp_path / "missing")])


def test_plots_regenerate_from_the_log(run_dir, capsys):
    for png in (run_dir / runlog.PLOTS_DIR).glob("*.png"):
        png.unlink()
    plots.main([str(run_dir)])
    written = capsys.readouterr().out.split()
    for name in ("losses.png", "hue_histograms.png", "joint_histograms.png"):
        assert str(run_dir / runlog.PLOTS_DIR / name) in written
        assert Image.open(run_dir / runlog.PLOTS_DIR / name).size[0] > 100
    grid = Image.open(sorted((run_dir / runlog.SAMPLES_DIR).glob("*.png"))[-1])
    assert grid.size == (3 * 32 + 2 * 2, 4 * 32 + 3 * 2)  # 4 rows of source | target | output


def test_plots_error_on_a_folder_without_a_log(tmp_path):
    with pytest.raises(SystemExit):
        plots.main([str(tmp_path)])

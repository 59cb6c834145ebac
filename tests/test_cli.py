"""The evaluate and plots command lines, on a tiny trained run (transfer: test_transfer_cli.py)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import bad_checkpoints
from huenet.colortransfer import runlog
from huenet.colortransfer.commands import evaluate
from huenet.colortransfer.training import plots
from huenet.colortransfer.training.options import TrainConfig
from huenet.colortransfer.training.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(
        TrainConfig(
            out=str(out),
            image_size=32,
            batch_size=4,
            ngf=8,
            bins=64,
            cond_bins=16,
            synthetic_images=60,
            epochs=6,
            lr=1e-3,
            sample_every=50,
        )
    )
    return out


def _image(path, size, colour):
    rng = np.random.default_rng(sum(size))
    array = np.clip(np.array(colour) + rng.integers(-40, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    array[size[1] // 3 : size[1] // 2] //= 3  # a dark band: structure to keep
    Image.fromarray(array).save(path)
    return path


def test_evaluate_against_baselines(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    evaluate.main(["--checkpoint", str(run_dir), "--json", str(out)])
    printed = capsys.readouterr().out
    for method in ("huenet", "huenet + refine 20", "identity", "reinhard", "histogram-matching", "mkl"):
        assert f"| {method} |" in printed
    result = json.loads(out.read_text())
    assert result["pairs"] == 6  # 10% of 60 images
    scores = {m: {k: v["mean"] for k, v in r.items()} for m, r in result["results"].items()}
    # Identity is the reference point: perfect structure, no colour change.
    assert scores["identity"]["v_mi_distance"] == pytest.approx(0, abs=1e-6)
    assert scores["identity"]["v_ssim"] == pytest.approx(1, abs=1e-6)
    # Every colour-transfer method moves the hues towards the target's, the tiny trained model included
    # (after 60 steps; its 256-bin intersection is not yet better than the source's, the baselines' is).
    for method in ("huenet", "reinhard", "histogram-matching"):
        assert scores[method]["hue_emd"] < 0.8 * scores["identity"]["hue_emd"], method
    for method in ("reinhard", "histogram-matching", "mkl"):
        assert scores[method]["ab_swd"] < scores["identity"]["ab_swd"], method
    for method in ("reinhard", "histogram-matching"):
        assert scores[method]["hue_intersection"] > scores["identity"]["hue_intersection"], method
    assert scores["huenet"]["v_ssim"] > 0.3
    # The default pipeline (huenet.transfer's) refines G's output with the training-free fit: closer hues.
    assert scores["huenet + refine 20"]["hue_emd"] < scores["huenet"]["hue_emd"]


def test_evaluate_refine_flag(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    evaluate.main(["--checkpoint", str(run_dir), "--json", str(out), "--limit", "2", "--refine", "0"])
    assert sorted(json.loads(out.read_text())["results"]) == [
        "histogram-matching",
        "huenet",
        "identity",
        "mkl",
        "reinhard",
    ]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        evaluate.main(["--checkpoint", str(run_dir), "--refine", "-1"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.strip().splitlines()[-1].endswith("--refine must be >= 0; got -1"), err


def test_evaluate_on_another_folder(run_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(12):
        _image(data / f"{i}.png", (48, 40), [(200, 30, 30), (30, 200, 30), (30, 30, 200)][i % 3])
    own = run_dir / runlog.EVALUATION_NAME
    evaluate.main(["--checkpoint", str(run_dir)])
    before = own.read_text()
    capsys.readouterr()
    evaluate.main(["--checkpoint", str(run_dir), "--data", str(data), "--limit", "1"])
    captured = capsys.readouterr()
    assert "1 validation pairs of " + str(data) in captured.out
    # The run's own evaluation is kept; this one goes beside it, named after the folder.
    assert own.read_text() == before
    assert json.loads((run_dir / "evaluation-data.json").read_text())["data"] == str(data)
    # Too few pairs for the means to mean much: one clean warning line.
    assert captured.err.startswith("huenet.evaluate: warning: only 1 validation pair(s)"), captured.err
    code, err = _exit(evaluate.main, ["--checkpoint", str(run_dir), "--data", str(data), "--json", str(own)], capsys)
    assert code == 2 and "--json" in err and "own evaluation" in err and own.read_text() == before
    code, err = _exit(evaluate.main, ["--checkpoint", str(run_dir), "--data", str(tmp_path / "missing")], capsys)
    assert code == 1 and err.startswith("huenet.evaluate: error: --data: the folder") and "does not exist" in err


def _exit(main, argv, capsys):
    """Run a CLI's main in this process, expecting it to exit; returns (status, stderr) after checking that
    stderr is one line without a traceback."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return info.value.code, err


def test_evaluate_with_a_bad_checkpoint_names_the_file(run_dir, tmp_path, capsys):
    for kind, path in bad_checkpoints(tmp_path, run_dir / "checkpoint.pt").items():
        code, err = _exit(evaluate.main, ["--checkpoint", str(path)], capsys)
        assert code == 1 and err.startswith(f"huenet.evaluate: error: --checkpoint: {str(path)!r} is not a"), err
    # A checkpoint whose weights do not fit its generator settings.
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["generator_config"]["ngf"] = 4
    torch.save(state, tmp_path / "mismatched.pt")
    code, err = _exit(evaluate.main, ["--checkpoint", str(tmp_path / "mismatched.pt")], capsys)
    assert code == 1 and "holds a generator that cannot be rebuilt" in err, err
    code, err = _exit(evaluate.main, ["--checkpoint", str(tmp_path / "none")], capsys)
    assert code == 1 and "--checkpoint: no checkpoint at" in err
    code, err = _exit(evaluate.main, ["--checkpoint", str(run_dir), "--device", "tpu"], capsys)
    assert code == 2 and err.startswith("huenet.evaluate: error: --device must be one of"), err


def test_evaluate_json_into_a_new_folder_and_self_pairs(run_dir, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "eval.json"
    evaluate.main(["--checkpoint", str(run_dir), "--json", str(out), "--limit", "2"])
    assert json.loads(out.read_text())["pairs"] == 2
    capsys.readouterr()
    code, err = _exit(evaluate.main, ["--checkpoint", str(run_dir), "--json", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in err
    (tmp_path / "file").write_text("")
    code, err = _exit(
        evaluate.main, ["--checkpoint", str(run_dir), "--json", str(tmp_path / "file" / "e.json")], capsys
    )
    assert code == 1 and err.startswith("huenet.evaluate: error: --json: cannot write") and "is a file" in err, err
    # Two images: a validation split of one image, paired with itself.
    data = tmp_path / "two"
    data.mkdir()
    for i in range(2):
        _image(data / f"{i}.png", (40, 40), (200, 30, 30))
    evaluate.main(["--checkpoint", str(run_dir), "--data", str(data)])
    err = capsys.readouterr().err
    assert (
        "huenet.evaluate: warning: validation pair 0 ('0.png'): its source and target are the same image" in err
        or "('1.png'): its source and target are the same image" in err
    ), err


def test_plots_regenerate_from_the_log(run_dir, capsys):
    for png in (run_dir / runlog.PLOTS_DIR).glob("*.png"):
        png.unlink()
    plots.main([str(run_dir)])
    written = capsys.readouterr().out.split()
    for name in ("losses.png", "hue_histograms.png", "joint_histograms.png"):
        assert str(run_dir / runlog.PLOTS_DIR / name) in written
        assert Image.open(run_dir / runlog.PLOTS_DIR / name).size[0] > 100
    grid = Image.open(sorted((run_dir / runlog.SAMPLES_DIR).glob("*.png"))[-1])
    # 4 rows of source | target | output, 32-px tiles enlarged to 128 px, under a header row of labels.
    assert grid.size[0] == 3 * 128 + 2 * 2 and grid.size[1] > 4 * 128 + 3 * 2


def test_plots_error_on_a_folder_without_a_log(tmp_path):
    with pytest.raises(SystemExit):
        plots.main([str(tmp_path)])


def test_plots_refuse_a_sample_file_that_needs_unpickling(run_dir, tmp_path, capsys):
    # A run folder whose newest sample file holds an object array (which only unpickling could read): one line
    # naming the file, no traceback.
    import shutil

    import numpy as np

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    newest = sorted((copy / runlog.SAMPLES_DIR).glob("step_*.npz"))[-1]
    np.savez(newest, source=np.array([object()], dtype=object), target=np.zeros(1), output=np.zeros(1), step=1)
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(copy)])
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and "Traceback" not in err
    assert str(newest) in err and "not a readable sample file" in err

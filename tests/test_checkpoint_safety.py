"""Loading a checkpoint runs nothing: crafted files are refused by every reader, old and new ones load and resume."""

import ast
import os
import pickle
import random
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import _image

from huenet.colortransfer.commands import evaluate, study, transfer
from huenet.colortransfer.training import train as train_module
from huenet.colortransfer.training.checkpoint import (
    TRAINING_KEYS,
    CheckpointError,
    load_checkpoint,
    load_generator,
    rng_state,
    set_rng_state,
)
from huenet.colortransfer.training.options import TrainConfig
from huenet.colortransfer.training.train import train

ROOT = Path(__file__).resolve().parents[1]
# Written by release 0.1.0 (see tests/data/README.md), with these settings.
OLD_CHECKPOINT = ROOT / "tests" / "data" / "checkpoint-0.1.0.pt"
OLD_SETTINGS = dict(image_size=32, batch_size=2, ngf=4, ndf=4, bins=32, cond_bins=8, synthetic_images=12)
OLD_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in OLD_SETTINGS.items()] + ["--num-workers=0"]


class _Payload:
    """What an attacker pickles: unpickling it calls ``call(*args)``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _crafted(folder: Path, payload: str, legacy_format: bool) -> tuple[Path, Path]:
    """A real checkpoint whose RNG entry writes a marker file when unpickled; returns (file, marker)."""
    marker = folder / "marker"
    if payload == "shell":
        attack = _Payload(os.system, f"touch {shlex.quote(str(marker))}")
    else:
        attack = _Payload(exec, f"open({str(marker)!r}, 'w').close()")
    state = load_checkpoint(OLD_CHECKPOINT, keys=TRAINING_KEYS)
    state["rng"] = [attack]
    path = folder / "shared.pt"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy_format)
    # The file does attack: an unrestricted load writes the marker (so its absence below means something).
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    return path, marker


def _refusal(main, argv, capsys) -> str:
    """Run a command's main, which must stop with exit status 1 and one line on stderr; returns that line."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    err, code = capsys.readouterr().err, info.value.code
    if isinstance(code, str):  # sys.exit(message): the interpreter prints it and exits with status 1
        err, code = err + code, 1
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("legacy_format", [False, True], ids=["zip", "legacy-format"])
@pytest.mark.parametrize("payload, asked", [("shell", "posix.system"), ("python", "exec")])
def test_a_crafted_checkpoint_runs_nothing_in_any_reader(tmp_path, capsys, payload, asked, legacy_format):
    path, marker = _crafted(tmp_path, payload, legacy_format)
    expected = f"{str(path)!r} is not a readable checkpoint (it asks for {asked}"

    source = _image(tmp_path / "source.png", (40, 30), (40, 170, 40))
    target = _image(tmp_path / "target.png", (30, 30), (200, 50, 40))
    out = tmp_path / "out.png"
    err = _refusal(transfer.main, ["--checkpoint", path, "--source", source, "--target", target, "--out", out], capsys)
    assert expected in err and not out.exists(), err
    err = _refusal(evaluate.main, ["--checkpoint", path], capsys)
    assert expected in err, err
    page = tmp_path / "study"
    err = _refusal(study.main, ["--checkpoint", path, "--out", page, "--methods", "huenet", "--n", "2"], capsys)
    assert expected in err and not (page / "index.html").exists(), err

    # Training resuming a run folder that holds it: refused before the folder is touched.
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    shutil.copy(path, run / "checkpoint.pt")
    (run / "metrics.jsonl").write_text('{"kind": "step", "step": 1}\n')
    (run / "config.json").write_text("{}\n")
    np.savez(run / "samples" / "step_0000001.npz", source=np.zeros((3, 4, 4)))
    before = _snapshot(run)
    err = _refusal(train_module.main, ["--out", run, *OLD_FLAGS, "--max-steps=4"], capsys)
    assert f"{str(run / 'checkpoint.pt')!r} is not a readable checkpoint (it asks for {asked}" in err, err
    assert "--no-resume" in err
    assert _snapshot(run) == before

    for load in (load_checkpoint, load_generator):
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert expected in str(info.value)
    assert not marker.exists(), "loading a checkpoint ran the code in it"


def test_a_0_1_0_checkpoint_still_loads_and_resumes(tmp_path, capsys):
    # The file holds 0.1.0's form: NumPy's RNG state as an array, which torch's default allowlist refuses.
    assert "numpy.ndarray" in torch.serialization.get_unsafe_globals_in_checkpoint(OLD_CHECKPOINT)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(OLD_CHECKPOINT, weights_only=True)

    state = load_checkpoint(OLD_CHECKPOINT, keys=TRAINING_KEYS)
    assert state["step"] == 2
    stored = state["rng"][0]
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(stored)
    name, key, *scalars = np.random.get_state()
    assert name == stored["numpy"][0] and np.array_equal(key, stored["numpy"][1])
    assert scalars == list(stored["numpy"][2:])
    assert random.getstate() == stored["python"] and torch.equal(torch.get_rng_state(), stored["torch"])

    # The --checkpoint commands take it...
    source = _image(tmp_path / "source.png", (40, 30), (40, 170, 40))
    target = _image(tmp_path / "target.png", (30, 30), (200, 50, 40))
    argv = ["--checkpoint", OLD_CHECKPOINT, "--source", source, "--target", target, "--out", tmp_path / "out.png"]
    transfer.main([str(a) for a in argv])
    assert (tmp_path / "out.png").is_file()
    assert load_generator(OLD_CHECKPOINT)[1]["ngf"] == 4
    # ...and training resumes it; the checkpoint it then writes needs nothing beyond torch's default allowlist.
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(OLD_CHECKPOINT, run / "checkpoint.pt")
    summary = train(TrainConfig(out=str(run), max_steps=4, sample_every=1000, num_workers=0, **OLD_SETTINGS))
    assert summary["resumed_from"] == 2 and summary["steps"] == 4
    assert torch.serialization.get_unsafe_globals_in_checkpoint(run / "checkpoint.pt") == []
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4


def _draws(cuda: bool) -> list:
    """A few numbers from every RNG training uses, each as a plain list."""
    draws = [random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist()]
    draws += [np.random.randint(0, 2**31, 3).tolist(), torch.rand(3).tolist()]
    return draws + ([torch.rand(3, device="cuda").tolist()] if cuda else [])


def _check_rng_roundtrip(path: Path, cuda: bool) -> None:
    # Odd numbers of Gaussian draws leave a cached half-pair in Python's and NumPy's states: they must survive too.
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()
    torch.save({"rng": rng_state()}, path)
    expected = _draws(cuda)
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    # torch's default weights-only load: the states need no allowlisted class at all.
    set_rng_state(torch.load(path, weights_only=True)["rng"])
    assert _draws(cuda) == expected


def test_rng_states_roundtrip_through_a_weights_only_load(tmp_path):
    _check_rng_roundtrip(tmp_path / "rng.pt", cuda=False)


@pytest.mark.gpu
def test_rng_states_roundtrip_with_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: the CUDA RNG states")
    _check_rng_roundtrip(tmp_path / "rng.pt", cuda=True)


def _unsafe_reads(tree: ast.AST) -> list[str]:
    """The calls and imports in ``tree`` that could unpickle or evaluate what a file holds."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {m}" for m in modules if m.split(".")[0] in {"pickle", "marshal", "shelve", "dill"}]
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            options = {k.arg: k.value for k in node.keywords}
            literal = {k: v.value for k, v in options.items() if isinstance(v, ast.Constant)}
            if name in ("eval", "exec"):
                found.append(name)
            elif name == "torch.load" and literal.get("weights_only") is not True:
                found.append("torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load") and literal.get("allow_pickle", False) is not False:
                found.append("np.load with allow_pickle")
    return found


def test_no_reader_in_the_package_unpickles_or_evaluates():
    # The scan itself finds what it looks for.
    bad = "import pickle\ntorch.load(f)\ntorch.load(f, weights_only=False)\nnp.load(f, allow_pickle=True)\neval(s)\n"
    assert len(_unsafe_reads(ast.parse(bad))) == 5
    assert _unsafe_reads(ast.parse("torch.load(f, weights_only=True)\nnp.load(f)\nmodel.eval()\n")) == []
    for folder in ("huenet", "kernels"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            assert _unsafe_reads(ast.parse(path.read_text())) == [], path

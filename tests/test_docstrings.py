"""The docstring examples of the loss library and the application run as doctests and give what they show.

The style (kornia's) asks every public op, loss and colour conversion for an example; this runs them all, and
checks that the public names of the library have one.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import huenet
import huenet.kernels
from huenet import color, losses

# huenet.kernels is mapped onto the top-level kernels/ folder, so a walk of huenet's own folder misses it.
MODULES = sorted(
    info.name
    for package in (huenet, huenet.kernels)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
)


def _run_examples(module):
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    report = []
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


def test_every_module_is_collected():
    # A walk that silently found nothing (or missed a subpackage) would make the test below vacuous.
    for name in (
        "huenet.histogram",
        "huenet.losses",
        "huenet.backends.eager",
        "huenet.colortransfer.data.images",
        "huenet.kernels.soft_histogram",
    ):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    (failed, attempted), report = _run_examples(importlib.import_module(name))
    assert failed == 0, f"{failed} of {attempted} examples failed in {name}:\n{report}"


def _public(module, names):
    return [(f"{module.__name__}.{n}", getattr(module, n)) for n in names]


@pytest.mark.parametrize(
    "qualname,obj",
    _public(huenet, [n for n in huenet.__all__ if n not in ("color", "losses")])
    + _public(color, [n for n in color.__all__ if callable(getattr(color, n))])
    + _public(
        losses,
        [
            n
            for n, o in vars(losses).items()
            if inspect.isclass(o) and o.__module__ == losses.__name__ and not n.startswith("_")
        ],
    ),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_public_names_have_an_example(qualname, obj):
    examples = doctest.DocTestFinder(recurse=False).find(obj, qualname)
    assert examples and examples[0].examples, f"{qualname} has no docstring example"

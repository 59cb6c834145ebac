"""``python -m huenet.plots``: the command-line door to :mod:`huenet.colortransfer.training.plots` (needs the ``[train]`` extra)."""

from .colortransfer.training.plots import main

if __name__ == "__main__":
    main()

"""``python -m huenet.plots``: the command-line door to :mod:`huenet.colortransfer.plots` (needs the ``[train]`` extra)."""

from .colortransfer.plots import main

if __name__ == "__main__":
    main()

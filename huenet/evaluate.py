"""``python -m huenet.evaluate``: the command-line door to :mod:`huenet.colortransfer.evaluate` (needs the ``[train]`` extra)."""

from .colortransfer.evaluate import main

if __name__ == "__main__":
    main()

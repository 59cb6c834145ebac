"""``python -m huenet.train``: the command-line door to :mod:`huenet.colortransfer.training.train` (needs the ``[train]`` extra)."""

from .colortransfer.training.train import main

if __name__ == "__main__":
    main()

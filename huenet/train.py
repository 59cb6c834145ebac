"""``python -m huenet.train``: the command-line door to :mod:`huenet.colortransfer.train` (needs the ``[train]`` extra)."""

from .colortransfer.train import main

if __name__ == "__main__":
    main()

"""``python -m huenet.transfer``: the command-line door to :mod:`huenet.colortransfer.transfer` (needs the ``[train]`` extra)."""

from .colortransfer.transfer import main

if __name__ == "__main__":
    main()

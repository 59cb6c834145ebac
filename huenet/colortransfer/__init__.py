"""The Hue-Net colour-transfer application, in rooms by job (docs/architecture.md):

- :mod:`~huenet.colortransfer.data`: images, folders, the built-in set, paired sets and tasks;
- :mod:`~huenet.colortransfer.methods`: the registry of methods, scoring, refinement and the full-size LUT;
- :mod:`~huenet.colortransfer.training`: options, networks, the GAN step, the loop, checkpoints and plots;
- :mod:`~huenet.colortransfer.commands`: transfer, evaluate and the realism study.

Shared by every room: :mod:`~.cli` (command-line errors), :mod:`~.runtime` (device, threads, distributed
set-up), :mod:`~.runlog` (a run folder's files), :mod:`~.metrics` and :mod:`~.baselines`.

It needs the ``[train]`` extra (matplotlib, Pillow, tqdm); the loss library in :mod:`huenet` does not.
"""

"""The training room: ``python -m huenet.train`` and what it builds.

- :mod:`~.options`: every setting (:class:`~.options.TrainConfig`) and its flag;
- :mod:`~.models`: the generator, the discriminator and the adversarial loss;
- :mod:`~.gan`: one training step of G and D, with :class:`huenet.losses.HueNetLoss`;
- :mod:`~.trainer`: the training loop (data, validation, samples, checkpoints, resume);
- :mod:`~.train`: the command line;
- :mod:`~.checkpoint`: saving and loading checkpoints;
- :mod:`~.plots`: the run's figures (``python -m huenet.plots`` redraws them).
"""

"""The data room: image files, folders of photos, the built-in synthetic set, paired sets and the tasks' inputs.

- :mod:`~.images`: reading and writing image files (8/16-bit, alpha);
- :mod:`~.folders`: folders of photos, the train/validation split and random (source, target) pairs;
- :mod:`~.synthetic`: the built-in set of generated images (no download);
- :mod:`~.paired`: (input, ground truth) pairs for colorize and edges2photo, from photos or AB images;
- :mod:`~.tasks`: the three tasks, what G is given for each and their defaults.
"""

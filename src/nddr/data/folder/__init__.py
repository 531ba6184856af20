"""The ``folder`` dataset: a user's own images and targets, described by one ``dataset.yaml``.

``manifest`` is the file's schema, ``readers`` and ``table`` read each kind of target,
``splits`` says which images are in which split, ``inspect`` guesses a manifest from a folder
(``nddr data init``) and ``dataset`` is the :class:`~nddr.data.base.MultiTaskDataset`.
"""

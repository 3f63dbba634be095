"""musicsim's trainer: self-supervised (Tile2Vec) training and evaluation of the embedding model.

Library entry points (import them from their modules; ``import trainer`` itself loads nothing):

* ``trainer.train.train(options: TrainOptions, *, progress=None, cancel=None) -> TrainResult``
* ``trainer.reembed.reembed_library(lib, loaded, progress, cancel)``
* ``trainer.evaluate.evaluate_folder(folder, *, model_path=None, ...)`` and ``format_report(result)``

Command lines: ``python -m trainer`` (``torchrun --nproc_per_node N -m trainer`` for DDP) and
``python -m trainer.evaluate FOLDER``.
"""

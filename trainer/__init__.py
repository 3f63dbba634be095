"""musicsim's trainer: self-supervised (Tile2Vec) training and evaluation of the embedding model.

It stands alone: it takes tracks (:class:`trainer.tracks.TrainTrack`) and options
(:class:`trainer.options.TrainOptions`) and returns a checkpoint with its metrics
(:class:`trainer.options.TrainResult`); it never opens a library. The library side of training
(collecting a library's tracks, re-embedding it, the album/folder check, activation) is
:mod:`musicsim.library.finetune`.

Entry points (import them from their modules; ``import trainer`` itself loads nothing):

* ``trainer.train.train(options, *, tracks=(), decode=None, progress=None, cancel=None) -> TrainResult``
* ``trainer.evaluate.evaluate_folder(folder, *, model_path=None, ...)`` and ``format_report(result)``

Modules, in reading order: ``options`` (what a run is asked), ``setup`` (resume, starting model,
schedule), ``dataset`` (split, frames, samplers; ``sampling``, ``segments``, ``duplicates``,
``related``), ``network`` (head, frozen stages, validation), ``run`` (the run's state and its
checkpoints), ``train`` (the loop), ``loss``, ``augment``, ``runtime`` (device, precision, DDP).

Command lines: ``python -m trainer`` (no arguments: fine-tune the default library; ``torchrun
--nproc_per_node N -m trainer`` for DDP) and ``python -m trainer.evaluate FOLDER``.
"""

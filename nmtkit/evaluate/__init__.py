"""Evaluation: sacrebleu scores of translations, overall and by sentence length, with bootstrap
intervals and paired significance tests; the `nmtkit evaluate` command's library.

The modules, each importing only those listed before it (nothing is re-exported here, so
`import nmtkit.evaluate.scores` loads neither torch, matplotlib nor the run mode):

- `scores`: `score_corpus`, `new_metric`, `CorpusScores`, `METRIC_NAMES`, `BUCKET_METRICS`;
  what training's validation uses, so its numbers are computed as `nmtkit evaluate`'s.
- `report`: length buckets, bootstrap intervals and paired p-values on cached sentence
  statistics, the report's data classes and `build_report`, which scores systems overall and
  per bucket.
- `tables`: a report as rich terminal tables and as JSON; `plot`: as a score-by-length figure
  (matplotlib, imported only when drawing).
- `curves`: a run's training curves from its metrics log (`reports/training.png`), drawn by
  training when it ends and by the run mode.
- `run`: `nmtkit evaluate` itself: the file mode (`evaluate_files`) and the run mode
  (`evaluate_run`: a run's test splits translated with its best checkpoint, then scored).
"""

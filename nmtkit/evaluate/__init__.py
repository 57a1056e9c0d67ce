"""Evaluation: sacrebleu scores of translations, overall and by sentence length, with bootstrap
intervals and paired significance tests; the `nmtkit evaluate` command's library.

The modules, each importing only those listed before it (nothing is re-exported here, so
`import nmtkit.evaluate.scores` loads neither torch, matplotlib nor the run mode):

- `scores`: `score_corpus`, `new_metric`, `CorpusScores`, `METRIC_NAMES`, `BUCKET_METRICS`;
  what training's validation uses, so its numbers are computed as `nmtkit evaluate`'s.
- `buckets`: length buckets (`make_buckets`, `bucket_index`, `parse_edges`, `check_by`).
- `significance`: bootstrap intervals and paired p-values on cached sentence statistics.
- `report`: the report's data classes (`LengthReport`, `BucketScores`, `MetricScore`) and
  `build_report`, which scores systems overall and per bucket.
- `tables`: a report as rich terminal tables; `export`: as JSON; `plot`: as a score-by-length
  figure (matplotlib, imported only when drawing).
- `files`: the file mode, `nmtkit evaluate --hyp ... --ref ...` (`evaluate_files`).
- `run`: the run mode, `nmtkit evaluate RUN_DIR_OR_RECIPE`: translate a run's test splits with
  its best checkpoint, then score them as `files` does (`evaluate_run`).
"""

"""The predict and evaluate stages: test-split predictions (:mod:`realfake.evaluation.predict`), the verdict's
run (:mod:`realfake.evaluation.evaluate`), the shortcut baselines, the audit, the fake-parameter bins, the pixel
statistics and the attribution maps."""

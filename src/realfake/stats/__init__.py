"""Statistics of the verdict: accuracy, AUC, bootstrap, multiple-testing corrections, the verdict's rules."""

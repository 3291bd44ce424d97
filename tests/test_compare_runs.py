"""scripts/compare_runs.py: how a refactoring shows it changed no output."""

import importlib.util
import json

from fixtures import REPOSITORY


def load_script():
    specification = importlib.util.spec_from_file_location("compare_runs", REPOSITORY / "scripts" / "compare_runs.py")
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


def write_run(root, shard: bytes, auc: float) -> None:
    (root / "results" / "shards").mkdir(parents=True)
    (root / "results" / "shards" / "xtest_0.npy").write_bytes(shard)
    (root / "results" / "evaluate").mkdir(parents=True)
    metrics = {"verdict": {"auc": auc, "auc_p_value": 0.5, "outcome": "inconclusive"}, "model_sha256": "a"}
    (root / "results" / "evaluate" / "metrics.json").write_text(json.dumps(metrics))


def test_identical_runs_compare_the_same_and_a_changed_byte_or_verdict_differs(tmp_path):
    compare = load_script().compare
    write_run(tmp_path / "a", b"stamps", 0.51)
    write_run(tmp_path / "b", b"stamps", 0.51)
    write_run(tmp_path / "c", b"stampz", 0.52)
    same = compare(tmp_path / "a", tmp_path / "b")
    assert not any(line.startswith("DIFFERS") for line in same), same
    assert "same shards: 1 of 1 files byte-identical; differ: []" in same
    different = compare(tmp_path / "a", tmp_path / "c")
    assert "DIFFERS shards: 0 of 1 files byte-identical; differ: ['results/shards/xtest_0.npy']" in different
    assert any(line.startswith("DIFFERS metrics.json verdict:") for line in different), different

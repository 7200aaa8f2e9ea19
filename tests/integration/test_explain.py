"""`ansible-playbook zerotouch.selfheal.explain`: the public scenarios replayed through the installed collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT.parent / "shared" / "scenarios" / "public"

pytestmark = pytest.mark.skipif(not SCENARIOS.is_dir(), reason=f"the shared scenarios are not at {SCENARIOS}")


def run_explain(snapshots: Path, output: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".collections")),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "zerotouch.selfheal.explain",
            "-e",
            f"snapshots={snapshots}",
            "-e",
            f"output={output}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_every_public_scenario_gets_its_expected_decision_without_reading_expect(tmp_path: Path) -> None:
    # The playbook sees copies with the expect block removed, so it cannot have read it.
    expected = {}
    copies = tmp_path / "snapshots"
    copies.mkdir()
    for path in sorted(SCENARIOS.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        expected[doc["id"]] = doc.pop("expect")
        (copies / path.name).write_text(yaml.safe_dump(doc))
    out = tmp_path / "decisions.jsonl"

    run = run_explain(copies, out)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert len(lines) == len(expected) >= 34  # p01-p34 at least
    for line in lines:
        assert set(line) == {"id", "action", "params", "proposed", "reasons"}
        want = expected[line["id"]]
        assert line["action"] == want["action"], (line["id"], line["reasons"])
        for key, value in (want.get("params") or {}).items():
            assert line["params"].get(key) == value, (line["id"], key, line["params"])
        assert line["proposed"] == want.get("proposed"), line["id"]
        assert line["reasons"] and all(isinstance(r, str) and r for r in line["reasons"])
    assert "p01-bad-rollout-latency -> rollback" in run.stdout


def test_a_malformed_snapshot_fails_naming_the_field(tmp_path: Path) -> None:
    doc = yaml.safe_load((SCENARIOS / "p01-bad-rollout-latency.yml").read_text())
    doc["observed"]["metrics"]["latency_p99_ms"] = "slow"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    run = run_explain(bad, tmp_path / "out.jsonl")
    assert run.returncode != 0
    assert "observed.metrics.latency_p99_ms" in run.stdout
    assert "slow" in run.stdout

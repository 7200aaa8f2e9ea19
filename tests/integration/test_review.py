"""`ansible-playbook zerotouch.selfheal.review`: a journal with known records -> a page Chromium shows as recorded.

The journal is written through its own API; the page is rendered by headless Chromium (Debian's ``chromium``,
installed by ``scripts/install-system.sh``) with every network feature off, and its DOM is checked for what the
journal holds. No sandbox is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

ROOT = Path(__file__).resolve().parents[2]
UNTIL = datetime.now(UTC).replace(microsecond=0)
T0 = UNTIL - timedelta(days=2)
HOSTILE = "KubePodCrashLooping <script>document.title='owned'</script><img src=x onerror=alert(1)>"
OBJECTIVES = {"max_latency_ms": 250, "max_error_rate": 0.5}


def _snapshot(alert: str, metrics: dict[str, float]) -> dict[str, object]:
    return {
        "intent": {"objectives": OBJECTIVES},
        "alert": {"labels": {"alertname": alert}},
        "observed": {"metrics": metrics},
    }


def build_journal(path: Path) -> dict[str, list[int]]:
    """checkout: 3 crash loops, restart recovered 1 of 3; payments: 2 breaches at max_replicas; ids kept."""
    ids: dict[str, list[int]] = {"failed": [], "capped": []}
    with Journal(path) as journal:
        for n, outcome in enumerate(["not_recovered", "recovered", "not_recovered"]):
            at = T0 + timedelta(hours=3 * n)
            did = journal.record_decision(
                namespace="shop",
                service="checkout",
                snapshot=_snapshot(HOSTILE, {"latency_p99_ms": 400.0 + n, "error_rate": 3.0}),
                decision={"action": "restart", "rule": "restart", "reasons": ["pods crash-loop | restart"]},
                fingerprint=f"crash{n}",
                alert_status="firing",
                at=at,
            )
            aid = journal.start_action(did, "restart", {}, started=at + timedelta(seconds=45))
            journal.finish_action(aid, outcome=outcome, changed=True, ended=at + timedelta(minutes=5))
            journal.record_effectiveness(
                aid,
                {
                    "recovered": outcome == "recovered",
                    "seconds_to_objectives_met": 150.0 if outcome == "recovered" else None,
                    "indicators": {
                        "latency_p99_ms": {"before": 400.0, "after": 120.0 if outcome == "recovered" else 390.0}
                    },
                    "verified_at": format_datetime(at + timedelta(minutes=5)),
                },
            )
            if outcome != "recovered":
                ids["failed"].append(aid)
            journal.record_decision(
                namespace="shop",
                service="checkout",
                snapshot={},
                decision={"action": "none", "rule": "alert-resolved"},
                fingerprint=f"crash{n}",
                alert_status="resolved",
                at=at + timedelta(minutes=30),
            )
        for n in range(2):
            ids["capped"].append(
                journal.record_decision(
                    namespace="shop",
                    service="payments",
                    snapshot=_snapshot("HighLatency", {"latency_p99_ms": 600.0, "cpu_utilization": 95.0}),
                    decision={
                        "action": "escalate",
                        "rule": "scale-up-at-cap",
                        "reasons": ["already at max_replicas 8"],
                        "evidence": {"max_replicas": 8},
                    },
                    fingerprint=f"lat{n}",
                    alert_status="firing",
                    at=T0 + timedelta(hours=12 + n),
                )
            )
    return ids


def run_review(journal: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".collections")),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "zerotouch.selfheal.review"]
    command += ["-e", "since=7d", "-e", f"until={format_datetime(UNTIL)}", "-e", f"journal={journal}"]
    command += ["-e", f"output={output}", *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def chromium(page: Path, profile: Path, *mode: str) -> str:
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is missing: run scripts/install-system.sh"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    done = subprocess.run(
        [browser, *flags, f"--user-data-dir={profile}", *mode, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Text(HTMLParser):
    """The text a person sees, and the elements present."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def test_the_review_page_shows_what_the_journal_holds_offline(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    ids = build_journal(journal)
    page = tmp_path / "review.html"

    run = run_review(journal, page)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"wrote the html review of 2 service(s) to {page}" in run.stdout

    source = page.read_text()
    assert not re.search(r"https?://", source), "the page references a URL"
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert not re.search(r"https?://", dom)
    parsed = _Text()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.text).split())
    assert "script" not in parsed.tags and "img" not in parsed.tags  # the alert's markup stayed text
    assert "<script>document.title='owned'</script>" in text
    assert parsed.tags.count("svg") >= 3
    assert "shop/checkout" in text and "shop/payments" in text
    assert "3 incidents" in text  # checkout's card
    assert "restart 3 1 2 0 0 33% 2m 30s" in text  # attempts, recovered, not, failed, pending, rate, median
    failed = ", ".join(f"action {i}" for i in ids["failed"])
    assert (
        f"restart did not recover shop/checkout's {HOSTILE} in 2 of 3 attempts in the last 7 days: find the cause, "
        f"or remove restart from its recovery evidence: {failed}"
    ) in text
    capped = ", ".join(f"decision {i}" for i in ids["capped"])
    assert "shop/payments breached 2 times with scale_up at max_replicas 8: raise max_replicas" in text
    assert f"evidence: {capped}" in text
    assert "1h 30m in breach" in text  # three incidents of 30 minutes each

    shot = tmp_path / "review.png"
    chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2600")
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("REVIEW_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)

    again = run_review(journal, page)
    assert again.returncode == 0, again.stdout[-3000:]
    assert f"unchanged: the html review of 2 service(s) to {page}" in again.stdout


def test_the_markdown_review_from_the_extension_or_the_format(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    build_journal(journal)
    for output, extra in ((tmp_path / "review.md", ()), (tmp_path / "review.txt", ("-e", "format=markdown"))):
        run = run_review(journal, output, *extra)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        text = output.read_text()
        assert text.startswith("# Post-incident review")
        assert "| restart | 3 | 1 | 2 | 0 | 0 | 33% | 2m 30s |" in text
        assert r"\<script\>" in text and "<script>" not in text
    bad = run_review(journal, tmp_path / "review.pdf")
    assert bad.returncode != 0
    assert "cannot tell the format from" in bad.stdout

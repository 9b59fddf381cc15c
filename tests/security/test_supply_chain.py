"""Supply chain: a pinned, hashed lock file; a vulnerability audit; no secret committed.

``pip-audit`` runs over requirements.lock. When the vulnerability service cannot be
reached, or it cannot look a dependency up, the test is SKIPPED with the count of
dependencies left unaudited -- never a silent pass (pip-audit itself prints "No known
vulnerabilities found" and exits 0 even when it audited nothing).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nominal.config import Home

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def test_lock_file_is_pinned_and_hashed() -> None:
    blocks = re.split(r"\n(?=[a-z0-9])", LOCK.read_text())
    packages = [b for b in blocks if re.match(r"[a-z0-9][a-z0-9._-]*==", b)]
    assert len(packages) > 50
    for block in packages:
        assert "--hash=sha256:" in block, block.splitlines()[0]
    assert not [b for b in blocks if re.match(r"[a-z0-9][a-z0-9._-]*\s*(>=|<=|~=|>|<)", b)]


@pytest.mark.timeout(300)
def test_pip_audit_of_the_lock_file() -> None:
    audit = Path(sys.executable).with_name("pip-audit")
    done = subprocess.run(
        [str(audit), "-r", str(LOCK), "--no-deps", "--disable-pip", "-f", "json",
         "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pip-audit could not reach its vulnerability service: {done.stderr[-400:]}")
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    assert not vulnerable, [
        (d["name"], d["version"], [v["id"] for v in d["vulns"]]) for d in vulnerable
    ]
    if skipped:
        pytest.skip(
            f"pip-audit could not audit {len(skipped)} of {len(deps)} locked dependencies "
            f"(first: {skipped[0]['name']}: {skipped[0]['skip_reason']}); no vulnerable "
            f"dependency among the {len(deps) - len(skipped)} audited"
        )


# -- no secret in the repository ----------------------------------------------------------

KEY_FILE = re.compile(r"(^|/)(id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12|.*\.pfx|\.env)$")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{32,}")
NOT_SOURCE = ("requirements.lock", "package-lock.json", "src/nominal/web/static/vendor/",
              "tests/security/crashes/")  # fmt: skip


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def test_no_key_files_or_private_keys_committed() -> None:
    files = _tracked()
    assert len(files) > 50
    assert not [f for f in files if KEY_FILE.search(f)]
    offenders = []
    for name in files:
        path = ROOT / name
        if name.startswith(NOT_SOURCE) or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        if PRIVATE_KEY.search(text):
            offenders.append(name)
    assert not offenders, offenders


def test_no_high_entropy_tokens_committed() -> None:
    found = []
    for name in _tracked():
        path = ROOT / name
        if name.startswith(NOT_SOURCE) or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for match in TOKEN.finditer(text):
            word = match.group(0)
            # random keys: mixed classes and near-uniform symbols (paths and words are not)
            if _entropy(word) > 4.5 and re.search(r"\d", word) and re.search(r"[A-Z]", word) \
                    and re.search(r"[a-z]", word) and "/" not in word:  # fmt: skip
                found.append(f"{name}: {word[:12]}...")
    assert not found, found[:20]


def test_generated_secrets_live_outside_the_lake_with_0600(hub_home: Home) -> None:
    key = hub_home.pseudonym_key
    session = hub_home.session_secret
    assert len(key) == 32 and len(session) == 32 and key != session
    for name in ("pseudonym", "session"):
        path = hub_home.keys / f"{name}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert hub_home.lake not in path.parents
    assert stat.S_IMODE(hub_home.keys.stat().st_mode) == 0o700
    # a second home gets different keys: nothing is shared through the code
    assert Home(hub_home.root.parent / "other").pseudonym_key != key
    assert os.environ.get("NOMINAL_HOME")  # the fixture's home, not the repository's

"""Kill -9 the web server mid-request, many times, and prove the control plane holds.

    python benchmarks/server_crash_trials.py [--trials 10] [--backends sqlite,postgres]
        [--people 250] [--users 6] [--seed 1] [--keep DIR]

A linked synthetic town (the web tests' town) is served by the real server
(``uvicorn nominal.web.serve:app``, one worker) on a control plane of its own: a SQLite
file, or a fresh schema on the PostgreSQL server at 127.0.0.1:5432 (db ``test``).
Concurrent virtual users create tasks through the form a practitioner uses (a task
row, its first note and the ``task.create`` audit entry) and open person views
(``view_person`` audit entries). At a random moment (0-3 s after the first acknowledged
task, so that requests are in flight however slow the machine) the server gets SIGKILL:

* SQLite passes ``PRAGMA integrity_check``;
* every task whose creation was acknowledged (303) is there, and every task that is
  there -- acknowledged or not -- is complete: the title, team, nominal, author and
  priority that were sent, and its note (task and note are one transaction);
* the audit chain verifies (hashes and seals), every acknowledged task has its
  ``task.create`` entry, and every acknowledged person view its ``view_person`` entry;
* the server starts again on the same control plane and answers ``/readyz``.

It prints trials, requests acknowledged before the kills and failures (target zero),
and exits 1 on any failure. ``tests/security/test_server_crash.py`` runs a few trials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "NOMINAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEAM = "CRASH"


@dataclass
class Sent:
    """What a virtual user asked for, and what the server acknowledged."""

    tasks: dict[str, dict[str, str]] = field(default_factory=dict)  # title -> form
    acked_tasks: dict[str, int] = field(default_factory=dict)  # title -> task id
    acked_views: list[str] = field(default_factory=list)  # nominal ids
    errors: list[str] = field(default_factory=list)


@dataclass
class BackendResult:
    backend: str
    trials: int = 0
    acked_tasks: int = 0
    unacked_but_committed: int = 0
    acked_views: int = 0
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    home: Path, database_url: str, port: int, timeout: float = 900
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMINAL_")}
    env.update(NOMINAL_HOME=str(home), NOMINAL_DATABASE_URL=database_url,
               NOMINAL_SECURE_COOKIES="0", NOMINAL_SEARCH_RATE_PER_MINUTE="1000000")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "nominal.web.serve:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server not ready in {timeout:.0f} s")


def sign_in(base: str, database_url: str, username: str, password: str, totp: str) -> httpx.Client:
    """A signed-in browser session (cookie) for the real server."""
    from nominal.db import ControlPlane
    from nominal.govern.auth import totp_now

    control = ControlPlane(database_url)
    with control.session() as s:  # a second sign-in within one TOTP step is a replay
        s.execute(sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"),
                  {"u": username})  # fmt: skip
    control.dispose()
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/sign-in").text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    data = {"username": username, "password": password, "code": totp_now(totp), "next": "/"}
    if csrf:
        data["csrf_token"] = csrf.group(1)
    response = client.post("/sign-in", data=data, follow_redirects=False)
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return client


async def load(
    base: str, cookies: httpx.Cookies, csrf: str, bearer: str, purpose: str, author: str,
    people: list[str], users: int, seconds: float, sent: Sent, trial: str,
) -> None:  # fmt: skip
    stop = time.monotonic() + seconds

    async def user(n: int) -> None:
        rng = random.Random(f"{trial}-{n}")
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as client:
            i = 0
            while time.monotonic() < stop:
                i += 1
                nominal = rng.choice(people)
                title = f"{trial}-u{n}-{i} follow-up visit"
                form = {"unit_type": "nominal", "unit_id": nominal, "title": title, "team": TEAM,
                        "kind": "task", "priority": rng.choice(["low", "normal", "high"]),
                        "note": f"note for {title}", "source": "person", "csrf_token": csrf}  # fmt: skip
                sent.tasks[title] = {**form, "author": author}
                try:
                    r = await client.post("/tasking/new", data=form, follow_redirects=False)
                    if r.status_code == 303:
                        sent.acked_tasks[title] = int(r.headers["location"].rsplit("/", 1)[1])
                    else:
                        sent.errors.append(f"task {r.status_code}: {r.text[:200]}")
                    v = await client.get(f"/api/people/{nominal}", params={"purpose": purpose},
                                         headers={"Authorization": f"Bearer {bearer}"})  # fmt: skip
                    if v.status_code == 200:
                        sent.acked_views.append(nominal)
                    else:
                        sent.errors.append(f"view {v.status_code}: {v.text[:200]}")
                except httpx.HTTPError:
                    return  # the server was killed

    await asyncio.gather(*(user(n) for n in range(users)))


def check(
    home: Path, database_url: str, sent: Sent, trial: str, views_before: int
) -> tuple[list[str], int]:
    """Problems with the control plane after a kill (empty: it held); and unacked commits."""
    from nominal.config import home as make_home
    from nominal.db import ControlPlane
    from nominal.govern.audit import audit_log

    problems: list[str] = []
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with sqlite3.connect(path) as con:
            result = con.execute("PRAGMA integrity_check").fetchone()
        if not result or result[0] != "ok":
            problems.append(f"integrity_check: {result}")
    control = ControlPlane(database_url)
    try:
        with control.engine.connect() as con:
            rows = con.execute(
                sa.text(
                    "SELECT t.id, t.title, t.unit_id, t.priority, t.created_by, tm.code, "
                    "(SELECT count(*) FROM product_task_notes n WHERE n.task_id = t.id), "
                    "(SELECT min(n.text) FROM product_task_notes n WHERE n.task_id = t.id) "
                    "FROM product_tasks t JOIN product_teams tm ON tm.id = t.team_id "
                    "WHERE t.title LIKE :p"
                ),
                {"p": f"{trial}-%"},
            ).fetchall()
            audited_tasks = set()
            views = 0
            for action, detail in con.execute(
                sa.text(
                    "SELECT action, detail FROM audit_log WHERE action IN "
                    "('task.create', 'view_person')"
                )
            ).fetchall():
                if action == "task.create":
                    audited_tasks.add(json.loads(detail).get("task"))
                else:
                    views += 1
        present = {r[1]: r for r in rows}
        for title, task_id in sent.acked_tasks.items():
            if title not in present:
                problems.append(f"acknowledged task {task_id} ({title}) is missing")
            elif task_id not in audited_tasks:
                problems.append(f"acknowledged task {task_id} has no task.create audit entry")
        unacked = 0
        for title, (task_id, _, unit_id, priority, author, team, notes, note) in present.items():
            want = sent.tasks.get(title)
            if want is None:
                problems.append(f"task {task_id} ({title}) was never sent")
                continue
            got = (unit_id, priority, author, team, notes, note)
            expected = (want["unit_id"], want["priority"], want["author"], TEAM, 1, want["note"])
            if got != expected:
                problems.append(f"task {task_id} is incomplete: {got} != {expected}")
            if task_id not in audited_tasks:
                problems.append(f"task {task_id} was committed without its task.create audit entry")
            if title not in sent.acked_tasks:
                unacked += 1
        if views - views_before < len(sent.acked_views):
            problems.append(
                f"{len(sent.acked_views)} person views acknowledged, "
                f"{views - views_before} view_person audit entries"
            )
        verification = audit_log(control, make_home(home)).verify()
        if not verification.ok:
            problems.append(
                f"audit chain: seq {verification.first_bad_seq}: {verification.problem}"
            )
    finally:
        control.dispose()
    return problems, unacked


def count_views(database_url: str) -> int:
    from nominal.db import ControlPlane

    control = ControlPlane(database_url)
    try:
        with control.engine.connect() as con:
            return int(con.execute(
                sa.text("SELECT count(*) FROM audit_log WHERE action = 'view_person'")
            ).scalar_one())  # fmt: skip
    finally:
        control.dispose()


def prepare_control(town_root: Path, database_url: str) -> dict[str, str]:
    """Governance (agreements, users) and a team on a fresh control plane; usernames."""
    sys.path.insert(0, str(ROOT / "tests" / "search"))
    from search_governance import setup_governance

    from nominal.db import ControlPlane
    from nominal.products.tasking import add_team

    control = ControlPlane(database_url)
    try:
        users = setup_governance(control, town_root / "synth" / "contracts")
        with control.session() as s:
            add_team(s, TEAM, "Crash trial team", "NPOL")
    finally:
        control.dispose()
    return users


def run_backend(
    backend: str, home: Path, town_root: Path, database_url: str, trials: int, users: int,
    rng: random.Random,
) -> BackendResult:  # fmt: skip
    sys.path.insert(0, str(ROOT / "tests" / "search"))
    from search_governance import PASSWORD, PURPOSE, TOTP

    from nominal.db import ControlPlane
    from nominal.engines import duck
    from nominal.engines.lake import Lake
    from nominal.govern.admin import get_purpose, get_user
    from nominal.govern.auth import issue_token

    result = BackendResult(backend)
    names = prepare_control(town_root, database_url)
    practitioner = names["practitioner"]
    con = duck.connect(Lake(home / "lake").require_current())
    people = [r[0] for r in con.execute(
        "SELECT DISTINCT nominal_id FROM gold.nominal_records ORDER BY 1 LIMIT 100").fetchall()]  # fmt: skip
    con.close()
    control = ControlPlane(database_url)
    with control.session() as s:
        bearer = issue_token(s, get_user(s, practitioner), get_purpose(s, PURPOSE)).token
    control.dispose()
    for i in range(trials):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        try:
            server = start_server(home, database_url, port)
        except RuntimeError as exc:
            result.failures.append(f"trial {i}: the server did not come back: {exc}")
            break
        try:
            browser = sign_in(base, database_url, practitioner, PASSWORD, TOTP[practitioner])
            page = browser.get(
                "/tasking/new", params={"unit_type": "nominal", "unit_id": people[0]}
            )
            match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
            csrf = match.group(1) if match else ""
            views_before = count_views(database_url)
        except Exception:
            server.kill()  # never leave a server behind
            raise
        trial = f"t{uuid.uuid4().hex[:8]}"
        sent = Sent()
        # The kill lands a random time after the first acknowledged write, so that it
        # falls among requests in flight however slow the machine is.
        delay = rng.uniform(0.0, 3.0)

        def kill(
            server: subprocess.Popen[bytes] = server, delay: float = delay, sent: Sent = sent
        ) -> None:
            deadline = time.monotonic() + 300
            while not sent.acked_tasks and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(delay)
            os.kill(server.pid, signal.SIGKILL)

        import threading

        killer = threading.Thread(target=kill)
        killer.start()
        asyncio.run(load(base, browser.cookies, csrf, bearer, PURPOSE, practitioner, people,
                         users, 600, sent, trial))  # fmt: skip
        killer.join()
        server.wait()
        browser.close()
        problems, unacked = check(home, database_url, sent, trial, views_before)
        result.trials += 1
        result.acked_tasks += len(sent.acked_tasks)
        result.acked_views += len(sent.acked_views)
        result.unacked_but_committed += unacked
        if sent.errors:
            problems.append(f"{len(sent.errors)} error answers before the kill: {sent.errors[0]}")
        result.failures.extend(f"{backend} trial {i}: {p}" for p in problems)
        print(f"  {backend} trial {i + 1}/{trials}: kill {delay:4.2f}s after the first ack, tasks sent "
              f"{len(sent.tasks)}, acknowledged {len(sent.acked_tasks)}, committed unacknowledged "
              f"{unacked}, views acknowledged {len(sent.acked_views)}; problems {len(problems)}",
              flush=True)  # fmt: skip
    # and the server comes back once more after the last kill
    port = free_port()
    try:
        server = start_server(home, database_url, port)
        server.terminate()
        server.wait(timeout=30)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result.failures.append(
            f"{backend}: the server did not come back after the last kill: {exc}"
        )
    return result


def postgres_schema() -> tuple[str, str]:
    """A fresh schema on the PostgreSQL server: (database URL, schema)."""
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def run(
    town_root: Path, home: Path, backends: list[str], trials: int, users: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    results = []
    for backend in backends:
        print(f"{backend}: {trials} kill -9 trials of the server", flush=True)
        if backend == "postgres":
            url, schema = postgres_schema()
            try:
                results.append(run_backend(backend, home, town_root, url, trials, users, rng))
            finally:
                drop_schema(schema)
        else:
            db = town_root / f"crash-control-{uuid.uuid4().hex[:6]}.db"
            results.append(
                run_backend(backend, home, town_root, f"sqlite:///{db}", trials, users, rng)
            )
    return {
        "trials": sum(r.trials for r in results),
        "acked_tasks": sum(r.acked_tasks for r in results),
        "unacked_but_committed": sum(r.unacked_but_committed for r in results),
        "acked_views": sum(r.acked_views for r in results),
        "failures": sum(len(r.failures) for r in results),
        "backends": [r.to_dict() for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--people", type=int, default=250)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests" / "security"))
    sys.path.insert(0, str(ROOT / "fuzz"))
    from web_town import build_town

    root = args.keep or Path(tempfile.mkdtemp(prefix="nominal-server-crash-"))
    if not (root / "home" / "lake").is_dir():
        build_town(root, people=args.people)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    t0 = time.perf_counter()
    summary = run(root, root / "home", backends, args.trials, args.users, args.seed)
    for b in summary["backends"]:
        for f in b["failures"]:
            print(f"  FAILURE {f}")
    print(f"server kill -9 trials {summary['trials']} ({', '.join(backends)}): tasks acknowledged "
          f"{summary['acked_tasks']}, committed but unacknowledged {summary['unacked_but_committed']}, "
          f"person views acknowledged {summary['acked_views']}, failures {summary['failures']} "
          f"({time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

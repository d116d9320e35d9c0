"""The CPU thread count: the user's setting wins, otherwise the cores other processes leave free."""

import os
import subprocess
import sys
import time

from factbench import threads


def test_user_setting_wins():
    assert threads.choose(env={"OMP_NUM_THREADS": "3"}).threads == 3
    assert threads.choose(env={"FACTBENCH_THREADS": "2", "OMP_NUM_THREADS": "5"}).source == "FACTBENCH_THREADS"
    assert threads.choose(env={"OMP_NUM_THREADS": "0"}, busy=0.0).source == "free cores"  # 0 is no setting


def test_busy_cores_are_left_alone(monkeypatch):
    monkeypatch.setattr(threads, "allowed_cores", lambda: 4)
    assert threads.choose(env={}, busy=0.0).threads == 4
    assert threads.choose(env={}, busy=0.5).threads == 4   # a lightly used core still serves a thread
    assert threads.choose(env={}, busy=0.7).threads == 3
    assert threads.choose(env={}, busy=1.9).threads == 2
    assert threads.choose(env={}, busy=9.0).threads == 1   # never fewer than one
    assert "4 core(s) allowed, 1.9 busy" in threads.choose(env={}, busy=1.9).describe()


def test_affinity_is_respected():
    code = "from factbench import threads; print(threads.allowed_cores())"
    cpu = min(os.sched_getaffinity(0))
    out = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "1"


def test_a_spinning_process_is_seen_busy():
    cpu = min(os.sched_getaffinity(0))
    spinner = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)  # let it start
    try:
        old = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        try:
            assert threads.busy_cores(0.5) >= 0.8
        finally:
            os.sched_setaffinity(0, old)
    finally:
        spinner.kill()
        spinner.wait()


def test_the_choice_is_said_once_when_work_starts(monkeypatch):
    said = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("FACTBENCH_THREADS", raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    try:
        choice = threads.configure(echo=said.append)
        assert said == []  # a refusal before any work prints only its own error line
        threads.announce()
        threads.announce()
        assert said == [f"factbench: {choice.describe()}"] and "core(s) allowed" in said[0]
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        threads.configure(echo=said.append)
        threads.announce()
        assert len(said) == 1  # the user's own setting is not repeated back
    finally:
        import torch

        torch.set_num_threads(1)

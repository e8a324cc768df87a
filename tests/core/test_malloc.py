"""Worker processes keep freed memory for reuse (core.malloc): a large array made again
after being freed faults in no new pages. Each case runs in a process of its own, as the
setting lasts a process's life."""

from __future__ import annotations

import subprocess
import sys
import weakref
from pathlib import Path

from celery.signals import worker_init

from config import celery

ROOT = Path(__file__).resolve().parents[2]
# Page faults while three 20 MB arrays are made and freed, after the same was done twice.
PROBE = """
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
from core.malloc import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else "default")
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    before = faults()
    arrays = [np.ones(2_500_000) for _ in range(3)]  # 20 MB each, written through
    del arrays
print(faults() - before)
"""


def faults_of_a_repeat(mode: str) -> tuple[str, int]:
    out = subprocess.run(  # noqa: S603 - this interpreter, this probe
        [sys.executable, "-c", PROBE.format(root=str(ROOT)), mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[0], int(out[1])


def test_a_freed_array_made_again_faults_in_no_new_pages():
    setting, faults = faults_of_a_repeat("keep")
    assert setting == "True"
    assert faults < 10  # their pages are the freed arrays'


def test_without_it_the_same_array_faults_in_its_pages_again():
    setting, faults = faults_of_a_repeat("default")
    assert setting == "default"
    # 60 MB is 30 pages even of 2 MB (numpy asks for huge pages; 1,047 faults here).
    assert faults >= 30


def test_celery_workers_set_it_when_they_start():
    receivers = [ref() if isinstance(ref, weakref.ref) else ref for _, ref in worker_init.receivers]
    assert celery.keep_memory_for_reuse in receivers

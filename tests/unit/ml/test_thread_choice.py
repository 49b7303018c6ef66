"""ThreadChoice: SGD steps take two threads unless one thread costs clearly less per step
(another process on a core makes every two-thread step wait); one thread is tried once early and
when two threads get dearer, two threads again now and then; a Stepper follows it chunk by chunk
with the same arithmetic."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from openaml.ml.training import sgd
from openaml.ml.training.params import SGDParams
from openaml.ml.training.sgd import LinearState, Stepper
from openaml.ml.training.thread_choice import PROBE_EVERY, ThreadChoice
from tests.unit.ml.test_training import _block


def chosen(choice: ThreadChoice, chunks: int, two_cost: float, one_cost: float,
           transposing: bool = False) -> list[bool]:
    """The ways of `chunks` chunks of 16 steps costing two_cost / one_cost a step."""
    ways = []
    for _ in range(chunks):
        two = choice.two_threads(transposing)
        choice.record(transposing, two, 16 * (two_cost if two else one_cost), 16)
        ways.append(two)
    return ways


def test_a_quiet_machine_tries_one_thread_once_and_stays_on_two() -> None:
    choice = ThreadChoice()
    ways = chosen(choice, 10 * PROBE_EVERY, 1e-3, 1.9e-3)
    # the first chunk is not counted (fresh scratch), the second measures two threads, the
    # third tries one thread: then two threads, whose cost never rises
    assert ways[:3] == [True, True, False] and all(ways[3:])
    assert choice.costs == {(False, True): 1e-3, (False, False): 1.9e-3}


def test_a_busy_machine_from_the_start_goes_to_one_thread_and_tries_two_now_and_then() -> None:
    choice = ThreadChoice()
    ways = chosen(choice, 3 + 3 * PROBE_EVERY, 5e-3, 2e-3)
    assert ways[:3] == [True, True, False]
    tries = [i for i, two in enumerate(ways[3:]) if two]
    assert len(tries) == 3 and all(b - a == PROBE_EVERY for a, b in zip(tries, tries[1:]))


def test_steps_follow_the_machine_both_ways() -> None:
    choice = ThreadChoice()
    assert all(chosen(choice, 3 + PROBE_EVERY, 1e-3, 1.9e-3)[3:])
    # another process takes a core: two-thread chunks cost 5x; two threads' running cost
    # passes 1.5x its least, one thread is tried and taken
    busy = chosen(choice, 2 * PROBE_EVERY, 5e-3, 1.9e-3)
    assert busy[5:].count(True) <= 2  # one thread within a few chunks, two threads tried alone
    # the core is free again: the next try of two threads brings them back
    quiet = chosen(choice, 2 * PROBE_EVERY, 1e-3, 1.9e-3)
    back = quiet.index(True)
    assert back <= PROBE_EVERY and all(quiet[back:])


def test_first_passes_and_later_passes_are_measured_apart() -> None:
    choice = ThreadChoice()
    chosen(choice, 3, 5e-3, 2e-3, transposing=True)  # a first pass on a busy machine: one thread
    assert not choice.two_threads(True)
    assert choice.two_threads(False)  # later passes' steps are not measured yet


def test_a_stepper_follows_its_choice_chunk_by_chunk_with_the_same_arithmetic(monkeypatch) -> None:
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)
    calls: list[str] = []
    elapsed = {"run_steps_two": 5.0, "run_steps": 2.0}  # two threads cost more on this machine
    clock = [0.0]
    monkeypatch.setattr(sgd.time, "perf_counter", lambda: clock[0])
    rng = np.random.default_rng(3)
    x = sp.csr_matrix(rng.random((640, 30)) < 0.3, dtype=float)
    block = _block(x, rng.integers(0, 3, 640).astype(float), np.ones(640))
    batches = [np.arange(i, i + 4) for i in range(0, 640, 4)]  # 160 steps: 10 chunks of 16
    for name in ("run_steps", "run_steps_two"):  # each compiled call advances the clock
        compiled = getattr(sgd, name)
        monkeypatch.setattr(sgd, name, lambda *args, f=compiled, n=name: (
            calls.append(n), clock.__setitem__(0, clock[0] + elapsed[n]), f(*args))[-1])
    states = [LinearState.zeros(30, 3, 1.0) for _ in range(2)]
    stepper = Stepper("MULTICLASS", states[0], SGDParams(), 4, True)
    stepper.run(0, block, batches)
    assert calls == ["run_steps_two", "run_steps_two"] + ["run_steps"] * 8
    Stepper("MULTICLASS", states[1], SGDParams(), 4).run(0, block, batches)
    assert np.array_equal(states[0].weights, states[1].weights)


def test_a_trainings_folds_and_its_final_passes_share_one_choice(monkeypatch) -> None:
    """Cross-validation's fold trainings and the training after them measure the ways once
    (one early try of one thread per kind of step, not one per fold)."""
    made: list[ThreadChoice] = []

    class Counted(ThreadChoice):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(sgd, "ThreadChoice", Counted)
    rng = np.random.default_rng(4)
    x = sp.csr_matrix(rng.random((900, 20)) < 0.3, dtype=float)
    block = _block(x, rng.integers(0, 2, 900).astype(float), np.ones(900))
    steppers: list[Stepper] = []
    original = Stepper.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        steppers.append(self)

    monkeypatch.setattr(Stepper, "__init__", init)
    sgd.fit_linear("BINARY", lambda: iter([block]), 20, 1, SGDParams(max_passes=3), 900)
    assert len(steppers) > 1 and len(made) == 1 and all(s.choice is made[0] for s in steppers)

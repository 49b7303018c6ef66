"""Which way a training's next SGD steps run: on two threads (kernel.run_steps_two) or on one
(kernel.run_steps), by what each has cost lately.

Two threads share a step's work, but every step ends at a barrier. When another process takes one
of the cores, each step waits for the thread that lost it. Full-size MNIST on two cores:
- quiet machine: later passes 85-148 ms on two threads, 172-229 ms on one;
- beside one busy-looping process: 413-544 ms on two threads, 198-406 ms on one, and whole
  trainings 6.6-8.1 s against 3.1-4.6 s.

The arithmetic is the same bit for bit either way. Steps take two threads. One chunk of steps
tries one thread early, and another whenever two threads cost well above the least they have
cost; steps stay on one thread while it costs clearly less, trying two threads again now and
then. A quiet machine pays for the early try alone. Costs are kept apart for steps that
transpose their minibatches (a first pass) and steps over kept plans, whose work differs; the
first chunk of each is not counted (it touches fresh scratch memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROBE_EVERY = 32  # chunks of steps between two tries of the other way
WEIGHT = 0.25  # of a chunk's cost per step in the running cost of the way in use
DEARER = 1.5  # two threads costing this many times their least: one thread is tried
ONE_THREAD_MARGIN = 0.8  # steps stay on one thread while it costs less than this share of two


@dataclass
class ThreadChoice:
    """The cost per step of each way, by (transposing, two threads): running for the way in
    use, the latest try's for the other."""

    costs: dict[tuple[bool, bool], float] = field(default_factory=dict)
    least: dict[bool, float] = field(default_factory=dict)  # two threads' least running cost
    started: set[bool] = field(default_factory=set)  # kinds of step whose first chunk has run
    chunks: int = 0
    tried: int = -PROBE_EVERY  # the chunk of the last try
    trying: bool = False

    def two_threads(self, transposing: bool) -> bool:
        """Whether the next chunk of steps takes two threads."""
        self.chunks += 1
        two, one = self.costs.get((transposing, True)), self.costs.get((transposing, False))
        due = self.chunks - self.tried >= PROBE_EVERY
        on_one = two is not None and one is not None and one < ONE_THREAD_MARGIN * two
        # one thread is tried once early (a busy machine from the start) and whenever two threads
        # have become dearer than they were
        try_one = two is not None and (one is None or (two > DEARER * self.least[transposing] and due))
        self.trying = (on_one and due) or (not on_one and try_one)
        if self.trying:
            self.tried = self.chunks
        return on_one == self.trying

    def record(self, transposing: bool, two: bool, seconds: float, steps: int) -> None:
        """A chunk of `steps` steps took `seconds` the way `two` says."""
        if steps <= 0:
            return
        if transposing not in self.started:
            self.started.add(transposing)
            return
        cost = seconds / steps
        key = (transposing, two)
        known = self.costs.get(key)
        self.costs[key] = cost if known is None or self.trying else known + WEIGHT * (cost - known)
        if two:
            self.least[transposing] = min(self.least.get(transposing, self.costs[key]), self.costs[key])

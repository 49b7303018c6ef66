"""What the fault-injection run did and found, for the terminal summary and the JSON report."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class KillPoint:
    """One SIGKILL: while a job ran (`job`) or while the restarted server re-ran it (`recovery`)."""

    phase: str
    kind: str
    at_seconds: float
    expected_seconds: float
    status_seen: str  # the entity's status at the last poll before the kill


@dataclass
class Trial:
    """One kill trial: its kills, then what the restarted server showed."""

    number: int
    kind: str
    kills: list[KillPoint] = field(default_factory=list)
    outcome: str = ""  # the interrupted entity's final status (an endpoint's for `endpoint`)
    messages: dict[str, str] = field(default_factory=dict)  # id -> message, when FAILED
    temp_files_after_kill: int = 0
    temp_files_after_restart: int = 0
    partial_outputs: int = 0
    integrity: str = ""
    entities_checked: int = 0
    errors_logged: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class S3Case:
    """One S3 fault during a job on a server in S3 mode."""

    name: str
    fault: str
    outcomes: dict[str, str]  # entity id -> final status
    messages: dict[str, str]  # entity id -> message of a FAILED entity
    proxy: dict[str, int]  # requests by what the proxy did with them
    seconds: float


@dataclass
class FaultReport:
    profile: str
    seed: int
    trials: list[Trial] = field(default_factory=list)
    s3_cases: list[S3Case] = field(default_factory=list)

    def kills(self) -> list[KillPoint]:
        return [kill for trial in self.trials for kill in trial.kills]

    def as_json(self) -> dict[str, Any]:
        kills = self.kills()
        return {
            "profile": self.profile,
            "seed": self.seed,
            "kill_trials": len(self.trials),
            "kills": len(kills),
            "kills_during_recovery": sum(k.phase == "recovery" for k in kills),
            "kills_by_kind": dict(Counter(k.kind for k in kills)),
            "statuses_seen_at_kill": dict(Counter(k.status_seen for k in kills)),
            "outcomes": dict(Counter(t.outcome for t in self.trials)),
            "temp_files_after_kill": sum(t.temp_files_after_kill for t in self.trials),
            "temp_files_after_restart": sum(t.temp_files_after_restart for t in self.trials),
            "partial_outputs": sum(t.partial_outputs for t in self.trials),
            "integrity": dict(Counter(t.integrity for t in self.trials)),
            "errors_logged": sum(len(t.errors_logged) for t in self.trials),
            "trials": [asdict(t) for t in self.trials],
            "s3_cases": [asdict(c) for c in self.s3_cases],
        }

    def summary_lines(self) -> list[str]:
        summary = self.as_json()
        lines = [f"profile {self.profile}, seed {self.seed}"]
        if self.trials:
            lines += [
                f"{summary['kill_trials']} kill trials, {summary['kills']} kills "
                f"({summary['kills_during_recovery']} during recovery); by kind "
                f"{summary['kills_by_kind']}; status at the kill {summary['statuses_seen_at_kill']}",
                "kill points (s after the create call / expected duration): " + ", ".join(
                    f"{k.kind}{'*' if k.phase == 'recovery' else ''} {k.at_seconds:.2f}/"
                    f"{k.expected_seconds:.2f}" for k in self.kills()),
                f"outcomes after restart: {summary['outcomes']}",
                f"temporary files: {summary['temp_files_after_kill']} left by kills, "
                f"{summary['temp_files_after_restart']} after restart; partial outputs visible: "
                f"{summary['partial_outputs']}",
                f"store integrity: {summary['integrity']}; entities checked through the API: "
                f"{sum(t.entities_checked for t in self.trials)}; errors logged by the server: "
                f"{summary['errors_logged']}",
            ]
        for case in self.s3_cases:
            lines.append(f"S3 {case.name} ({case.fault}): {case.outcomes} in {case.seconds:.1f} s, "
                         f"proxy {case.proxy}" + (f", messages {case.messages}" if case.messages else ""))
        return lines

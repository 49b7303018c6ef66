"""A training's progress, pass by pass: what the model's job stores and the console draws."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STORED_LOSSES = 1000  # of the last passes: a long training's info stays small (sgd.maxPasses <= 10,000)


@dataclass(frozen=True)
class TrainingProgress:
    """The mean training loss of each pass done so far (pass k at losses[k - 1]), of at most
    max_passes (training may stop earlier, once the loss no longer falls)."""

    max_passes: int
    losses: tuple[float, ...] = ()

    @property
    def passes(self) -> int:
        return len(self.losses)

    def after(self, loss: float) -> TrainingProgress:
        """The progress once one more pass ended with this mean loss."""
        return TrainingProgress(self.max_passes, (*self.losses, loss))

    def to_json(self) -> dict[str, Any]:
        """As stored in the model's info: the last pass's number and loss, read by earlier
        versions, and the losses of the last STORED_LOSSES passes from `first_pass` on (None
        where one was not finite: JSON has no NaN)."""
        kept = [loss if math.isfinite(loss) else None for loss in self.losses[-STORED_LOSSES:]]
        return {"pass": self.passes, "max_passes": self.max_passes,
                "loss": kept[-1] if kept else None, "losses": kept,
                "first_pass": self.passes - len(kept) + 1}

    @classmethod
    def from_json(cls, doc: Any) -> TrainingProgress | None:
        """The progress stored, or None when there is none (or it is not a progress). A
        model trained before the losses of every pass were kept shows its last pass alone."""
        if not isinstance(doc, dict):
            return None
        try:
            max_passes = int(doc["max_passes"])
            losses = doc.get("losses")
            if losses is None:  # the earlier layout: the last pass's loss alone
                last = int(doc.get("pass") or 0)
                losses = [None] * (last - 1) + [doc.get("loss")] if last > 0 else []
            else:  # passes before the stored ones: unknown
                losses = [None] * (int(doc.get("first_pass", 1)) - 1) + list(losses)
            return cls(max_passes, tuple(math.nan if v is None else float(v) for v in losses))
        except (KeyError, TypeError, ValueError):
            return None

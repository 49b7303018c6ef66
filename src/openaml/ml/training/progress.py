"""A training's progress, pass by pass: what the model's job stores and the console draws."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from openaml.ml.training.validation import Validation

STORED_LOSSES = 1000  # of the last passes: a long training's info stays small (sgd.maxPasses <= 10,000)


@dataclass(frozen=True)
class TrainingProgress:
    """The mean training loss of each pass done so far (pass k at losses[k - 1]), of at most
    max_passes (training may stop earlier, once the loss no longer falls); on small data,
    the cross-validation of the number of passes (validation.py, reported pass by pass before
    training starts) and the number chosen (0: not chosen, every pass runs)."""

    max_passes: int
    losses: tuple[float, ...] = ()
    validation: Validation = Validation()
    chosen_passes: int = 0

    @property
    def passes(self) -> int:
        return len(self.losses)

    def after(self, loss: float) -> TrainingProgress:
        """The progress once one more pass ended with this mean loss."""
        return replace(self, losses=(*self.losses, loss))

    def line(self) -> str:
        """The latest pass, in words (the training log's line)."""
        if not self.losses:
            checked = self.validation
            metric = f", metric {checked.metrics[-1]}" if checked.metrics else ""
            return (f"cross-validation pass {len(checked.losses)} of up to {self.max_passes}: "
                    f"held-out loss {checked.losses[-1] if checked.losses else None}{metric}")
        if self.chosen_passes:
            return (f"pass {self.passes} of the {self.chosen_passes} chosen by cross-validation: "
                    f"loss {self.losses[-1]}")
        return f"pass {self.passes} of {self.max_passes}: loss {self.losses[-1]}"

    def to_json(self) -> dict[str, Any]:
        """As stored in the model's info: the last pass's number and loss, read by earlier
        versions, and the losses of the last STORED_LOSSES passes from `first_pass` on (None
        where one was not finite: JSON has no NaN); when cross-validated, the validation
        losses and metrics of the first STORED_LOSSES passes and the passes chosen."""
        kept = _finite(self.losses[-STORED_LOSSES:])
        doc = {"pass": self.passes, "max_passes": self.max_passes,
               "loss": kept[-1] if kept else None, "losses": kept,
               "first_pass": self.passes - len(kept) + 1}
        if self.validation.losses:
            doc["validation_losses"] = _finite(self.validation.losses[:STORED_LOSSES])
            doc["validation_metrics"] = _finite(self.validation.metrics[:STORED_LOSSES])
            doc["chosen_passes"] = self.chosen_passes
            doc["chosen_by_metric"] = self.validation.by_metric
        return doc

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
            validation = Validation(_numbers(list(doc.get("validation_losses") or [])),
                                    _numbers(list(doc.get("validation_metrics") or [])),
                                    bool(doc.get("chosen_by_metric")))
            return cls(max_passes, _numbers(losses), validation, int(doc.get("chosen_passes") or 0))
        except (KeyError, TypeError, ValueError):
            return None


def _finite(values: tuple[float, ...]) -> list[float | None]:
    """As JSON holds them: None where a value is not finite (JSON has no NaN)."""
    return [v if math.isfinite(v) else None for v in values]


def _numbers(values: list[Any]) -> tuple[float, ...]:
    return tuple(math.nan if v is None else float(v) for v in values)

"""What every operation needs: the parts assembled by app.build_app, passed in explicitly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openaml.settings import Settings
from openaml.store import Store

if TYPE_CHECKING:
    from openaml.jobs.engine import JobEngine
    from openaml.jobs.models import LoadedModels
    from openaml.service.predictors import PredictorRegistry
    from openaml.storage import Artifacts, ObjectStore
    from openaml.storage.databases import DatabaseConfig

def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ServiceContext:
    settings: Settings
    store: Store
    objects: ObjectStore
    artifacts: Artifacts
    engine: JobEngine
    predictors: PredictorRegistry
    databases: DatabaseConfig
    models: LoadedModels  # shared by Predict's endpoints, the jobs and the console
    clock: Callable[[], int] = wall_clock_ms

    def request_context(self, caller: str | None, explain: str | None = None) -> RequestContext:
        """The context of a request signed by `caller` (an IAM ARN); none: the account's root
        (a server without access keys, the console). `explain`: its X-OpenAML-Explain header."""
        return RequestContext(caller or f"arn:aws:iam::{self.settings.account_id}:root", explain)


@dataclass(frozen=True)
class RequestContext:
    """What an operation knows of its request besides the members: who made it, and what it
    asked beyond Amazon ML's API."""

    caller: str  # the IAM identity (ARN), stored as an entity's CreatedByIamUser
    explain: str | None = None  # Predict: the X-OpenAML-Explain header, contributions to add

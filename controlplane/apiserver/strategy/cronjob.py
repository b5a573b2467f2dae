"""CronJobs (``pkg/registry/batch/cronjob``): Kubernetes' defaults (``SetDefaults_CronJob``:
concurrencyPolicy ``Allow``, ``suspend: false``, history limits 3 successful / 1 failed; the
job template's pod defaults), a fresh status on create and generation tracking. Validation:
``validation/batch.cronjob`` (schedule, timeZone, policies, the job template); controller:
``controlplane/controllers/cronjob.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub, template_defaults

Obj = dict[str, Any]


class CronJobStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        if not spec.get("concurrencyPolicy"):
            spec["concurrencyPolicy"] = "Allow"
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("successfulJobsHistoryLimit") is None:
            spec["successfulJobsHistoryLimit"] = 3
        if spec.get("failedJobsHistoryLimit") is None:
            spec["failedJobsHistoryLimit"] = 1
        template = spec.get("jobTemplate")
        if isinstance(template, dict):
            template_defaults(sub(template, "spec"))

"""What the running Snakemake knows of a job beyond its records: params, conda env, container.

`job_info` records carry files, wildcards and resources but not the rule's
`params`, its conda environment or its container image. The plugin runs in
Snakemake's own process, so it asks the live workflow (Snakemake keeps it as
`snakemake.workflow.workflow`, the DAG's `_jobid` maps jobs to their ids).
These are Snakemake's internals, not its plugin interface: any surprise
gives no details (None), never an error in Snakemake.
"""

from __future__ import annotations

from typing import Any

from snakemake_logger_plugin_appliance.mapping import as_json

MAX_PARAM_TEXT = 1_000  # characters of one param shown as text (a data frame's repr can be huge)


class LiveJobs:
    """Details of jobs by Snakemake job id, read from the running workflow."""

    def __init__(self, workflow: Any = None):
        self._workflow = workflow
        self._by_id: dict[int, Any] = {}

    def details(self, jobid: Any) -> dict | None:
        """{"params": {...}, "conda_env": str | None, "container": str | None}, or None if unknown."""
        try:
            job = self._job(jobid)
            if job is None:
                return None
            # A conda env or container the rule names is used only under its deployment
            # method (--software-deployment-method conda / apptainer); else the job runs without.
            methods = self._deployment_methods()
            return {"params": _params(job.params),
                    "conda_env": _conda_env(job.conda_env_spec) if "CONDA" in methods else None,
                    "container": _text(job.container_img_url) if "APPTAINER" in methods else None}
        except Exception:  # Snakemake's internals changed: no details rather than a broken run
            return None

    def _job(self, jobid: Any) -> Any:
        if jobid not in self._by_id:
            dag = getattr(self._live_workflow(), "dag", None)
            # New jobs appear after a checkpoint: the map is rebuilt on a miss.
            self._by_id = {number: job for job, number in getattr(dag, "_jobid", {}).items()}
        return self._by_id.get(jobid)

    def _deployment_methods(self) -> set[str]:
        settings = getattr(self._live_workflow(), "deployment_settings", None)
        return {getattr(method, "name", str(method)) for method in getattr(settings, "deployment_method", ())}

    def _live_workflow(self) -> Any:
        if self._workflow is None:
            import snakemake.workflow

            self._workflow = getattr(snakemake.workflow, "workflow", None)
        return self._workflow


def _params(params: Any) -> dict:
    """A job's params by name; unnamed ones by position ("0", "1", ...)."""
    named = dict(params.items()) if hasattr(params, "items") else {}
    named_ids = {id(value) for value in named.values()}
    unnamed = {str(index): value for index, value in enumerate(params or []) if id(value) not in named_ids}
    return {name: as_json(value, MAX_PARAM_TEXT) for name, value in {**unnamed, **named}.items()}


def _conda_env(spec: Any) -> str | None:
    """The environment as the rule names it: a YAML file, a directory or an environment's name."""
    if not spec:
        return None
    for attribute in ("file", "path", "name"):
        value = getattr(spec, attribute, None)
        if value is not None:
            value = value.get_path_or_uri() if hasattr(value, "get_path_or_uri") else value
            return _text(value)
    return _text(spec)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)

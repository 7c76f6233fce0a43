"""Batch jobs: a job file (YAML, CSV, JSONL) rendered into a folder, resumable and failure-isolated.

    jobs = load_jobs("jobs.yaml", "out/")          # validates every row first (JobFileError lists all)
    with LocalExecutor(workers=2) as ex:          # or RayExecutor(address=...) (the `ray` extra)
        summary = run_batch(jobs, "out/", ex)     # skips up-to-date outputs; writes summary.json/.csv
"""

from .jobs import Job, JobFileError, load_jobs
from .local import LocalExecutor, default_workers
from .runner import BatchSummary, Executor, JobReport, plan_batch, run_batch
from .task import Outcome, ProgressEvent, Task, run_task

__all__ = ["BatchSummary", "Executor", "Job", "JobFileError", "JobReport", "LocalExecutor", "Outcome",
           "ProgressEvent", "Task", "default_workers", "load_jobs", "plan_batch", "run_batch", "run_task"]

"""Reproduce the paper's tables: run a grid of configs and print it beside the published numbers.

The names of :mod:`nddr.experiments` in one place: the suites (:mod:`~nddr.experiments.suites`,
read from the package's ``suites.yaml``), the paper's numbers (:mod:`~nddr.experiments.paper`),
planning and running (:mod:`~nddr.experiments.planning`, on the planner of
:mod:`nddr.training.pipeline`) and the tables (:mod:`~nddr.experiments.tables`).
"""

from nddr.experiments.paper import paper_rows
from nddr.experiments.planning import DEFAULT_OUT, format_plan, plan, plan_document, run_suite
from nddr.experiments.recipes import find_configs
from nddr.experiments.suites import (
    SUITES,
    Column,
    Row,
    Suite,
    get_suite,
    higher_is_better,
    selected_rows,
)
from nddr.experiments.tables import GAINS, MISSING, format_table
from nddr.training.pipeline import RECORD_FILE as RECORD_NAME
from nddr.training.pipeline import Outcome, RunSpec, finished, planned_checkpoint, run_state
from nddr.training.run_folder import RESULTS_FILE as RESULTS_NAME

__all__ = [
    "DEFAULT_OUT",
    "GAINS",
    "MISSING",
    "RECORD_NAME",
    "RESULTS_NAME",
    "SUITES",
    "Column",
    "Outcome",
    "Row",
    "RunSpec",
    "Suite",
    "find_configs",
    "finished",
    "format_plan",
    "format_table",
    "get_suite",
    "higher_is_better",
    "paper_rows",
    "plan",
    "plan_document",
    "planned_checkpoint",
    "run_state",
    "run_suite",
    "selected_rows",
]

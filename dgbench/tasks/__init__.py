"""Quality tasks: loaders, prompt formats and scorers, each registered by its suite name.

The contract and registry are in dgbench/tasks/base.py; importing this package registers the built-in
tasks (pure Python, cheap), in the order `dgbench list tasks` and error messages show them. Suites run
them with `scenario: quality` (dgbench/scenarios/quality.py), which writes RUN_DIR/samples.jsonl.
"""

# isort: off  (registration order is display order)
from dgbench.tasks import sudoku, multiple_choice, code_infill, pyfill, lm_eval  # noqa: F401
# isort: on
from dgbench.tasks.base import TASKS, Task, TaskItem, register_task, task_of

__all__ = ["TASKS", "Task", "TaskItem", "register_task", "task_of"]

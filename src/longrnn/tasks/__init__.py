"""Long-dependency tasks: one `Task` protocol (`base.py`), one file per family, and a registry.

    make_task(name, **options)      # a Task, options checked
    available()                     # {name: one-line description}

Each family file registers its names with `register` (`registry.py`); importing this package imports
them all.
"""

# Importing the family modules registers their tasks.
from longrnn.tasks import (  # noqa: F401
    adding,
    copy,
    denoising,
    digits,
    dynamical,
    dysts_task,
    sequences,
    spatial_copy,
    timeseries,
    tmaze,
)
from longrnn.tasks.base import Task
from longrnn.tasks.registry import available, check_task_options, make_task, register, task_class, task_options

__all__ = ["Task", "available", "check_task_options", "make_task", "register", "task_class", "task_options"]

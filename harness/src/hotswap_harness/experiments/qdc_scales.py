"""The QDC experiment's sizes (the tasks' own, :data:`hotswap.data.tasks.TASK_SCALES`) and settings, apart from
its code so that the CLI's help reads them without torch."""

from __future__ import annotations

from hotswap.data.tasks import TASK_SCALES

SCALES = TASK_SCALES  # the sizes live with the tasks: 'hotswap train continual' uses them too

SETTINGS = {"sections": "debian-sections", "sources": "five-sources"}  # --sequence -> the setting's name

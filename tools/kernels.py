"""Jupyter kernels for the project's own runs of the lessons (nbval in ``make test``, the student
check of ``tools/student.py --verify``): kernels that talk over unix sockets in a private folder
instead of TCP ports on 127.0.0.1, so two kernels started at once (two test workers, two lessons
checked together) cannot be handed the same port.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

from jupyter_client.manager import KernelManager

_SOCKETS = tempfile.mkdtemp(prefix="diffkit-kernels-")
atexit.register(shutil.rmtree, _SOCKETS, ignore_errors=True)


class SocketKernelManager(KernelManager):
    """A kernel manager whose kernel listens on unix sockets named after a fresh prefix in this
    process's private folder (removed at exit)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", tempfile.mktemp(prefix="kernel-", dir=_SOCKETS))
        super().__init__(**kwargs)

"""How pytest runs the lessons (``make test`` runs nbval over this folder on two workers).

Each notebook's kernel talks to nbval over unix sockets in a private folder instead of TCP ports
on 127.0.0.1: two kernels started at once by two workers cannot be given the same port.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import nbval.kernel
from jupyter_client.manager import KernelManager

_SOCKETS = tempfile.mkdtemp(prefix="diffkit-kernels-")
atexit.register(shutil.rmtree, _SOCKETS, ignore_errors=True)


class _SocketKernelManager(KernelManager):
    """A kernel manager whose kernels listen on unix sockets named after a fresh prefix."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", tempfile.mktemp(prefix="kernel-", dir=_SOCKETS))
        super().__init__(**kwargs)


nbval.kernel.KernelManager = _SocketKernelManager

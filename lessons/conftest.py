"""How pytest runs the lessons (``make test`` runs nbval over this folder on two workers): each
notebook's kernel talks to nbval over unix sockets (``tools/kernels.py``), so two kernels started
at once by two workers cannot be given the same TCP port.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbval.kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from kernels import SocketKernelManager  # noqa: E402

nbval.kernel.KernelManager = SocketKernelManager

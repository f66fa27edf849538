"""Hugging Face Space entry point: the diffkit demo hub.

`make space` copies this file to the root of build/space, beside the `diffkit/` and `apps/`
folders, the Space card (README.md) and requirements.txt. On a Space, Gradio reads the address
and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; run locally it serves 127.0.0.1:7860.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for root in (HERE, HERE.parent):  # the Space root, or the repository when run as apps/app.py
    if (root / "apps" / "hub.py").exists() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
        break

from apps.hub import build_hub, launch  # noqa: E402

demo = build_hub()

if __name__ == "__main__":
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))

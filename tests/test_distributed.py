"""fit under torchrun: two CPU processes (gloo) give the weights of one process on the same
global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch
from conftest import ROOT, free_port

WORKER = textwrap.dedent("""
    import sys
    import torch
    from diffkit import data, nn, train

    def run():
        torch.manual_seed(0)
        net = nn.TimeMLP(2, hidden=16, depth=2, num_classes=2).double()
        x = data.toy("moons", 64, torch.Generator().manual_seed(0), dtype=torch.float64)
        labels = (x[:, 1] > 0).long()
        D = train.fit(net, x, "vp-linear", loss="dsm", target="eps", steps=6, batch_size=16, lr=1e-2,
                      generator=torch.Generator().manual_seed(1), labels=labels, label_dropout=0.3,
                      ema_decay=0.9, progress=False)
        return D.result.model, D.net

    if __name__ == "__main__":
        import torch.distributed as dist
        from safetensors.torch import save_file

        raw, ema = run()
        rank = dist.get_rank()
        state = {f"raw.{k}": v for k, v in raw.state_dict().items()}
        state.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
        save_file({k: v.contiguous() for k, v in state.items()}, f"{sys.argv[1]}.{rank}.safetensors")
        dist.destroy_process_group()
""")


def test_two_process_fit_equals_one_process_on_the_global_batch(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script), str(tmp_path / "w")]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ranks = [load_file(str(tmp_path / f"w.{r}.safetensors")) for r in (0, 1)]
    # the reference: this process alone, the same code, the whole global batch
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    worker = importlib.import_module("worker")
    raw, ema = worker.run()
    one = {f"raw.{k}": v for k, v in raw.state_dict().items()}
    one.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    # the weights moved: the comparison is not between two untrained networks
    torch.manual_seed(0)
    fresh = worker.nn.TimeMLP(2, hidden=16, depth=2, num_classes=2).double().state_dict()
    assert max(float((one[f"raw.{k}"] - v).abs().max()) for k, v in fresh.items()) > 1e-3
    for state in ranks:
        assert set(state) == set(one)
        for k, v in one.items():
            torch.testing.assert_close(state[k], v, rtol=0, atol=1e-6, msg=k)

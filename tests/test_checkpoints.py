"""Checkpoints: safetensors only, hashed, saved atomically; every kind of damage is a ValueError
that names the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from diffkit import train
from diffkit.discrete.checkpoints import PRETRAINED, load_pretrained


def _model(value: float, n: int = 16) -> torch.nn.Linear:
    m = torch.nn.Linear(n, n)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.fill_(value)
    return m


def _build(cfg):
    extra = {k: v for k, v in cfg.items() if k != "n"}
    return torch.nn.Linear(cfg["n"], cfg["n"], **extra)


def _value(path) -> float:
    """Load the checkpoint and check that its halves agree: every weight equals metadata['v']."""
    m, info = train.load_checkpoint(path, _build)
    v = info["metadata"]["v"]
    assert bool((m.weight == v).all()) and bool((m.bias == v).all())
    return v


def _names(directory: Path) -> set:
    return {p.name for p in directory.iterdir()}


def test_roundtrip_records_the_hash_and_leaves_only_the_pair(tmp_path):
    st, js = train.save_checkpoint(tmp_path / "m", _model(1.0), {"n": 16}, {"v": 1.0})
    info = json.loads(js.read_text())
    import hashlib

    assert info["sha256"] == hashlib.sha256(st.read_bytes()).hexdigest()
    assert _value(tmp_path / "m") == 1.0
    train.save_checkpoint(tmp_path / "m", _model(2.0), {"n": 16}, {"v": 2.0})
    assert _value(tmp_path / "m.json") == 2.0
    assert _names(tmp_path) == {"m.safetensors", "m.json"}


def _corrupt_cases(tmp_path):
    """(description, edit of the saved pair, expected words in the message, file named)."""

    def truncate(st, js):
        st.write_bytes(st.read_bytes()[:-40])

    def flip(st, js):
        b = bytearray(st.read_bytes())
        b[-3] ^= 0xFF
        st.write_bytes(bytes(b))

    def pickle_renamed(st, js):
        torch.save(_model(1.0).state_dict(), st)

    def pickle_with_its_hash(st, js):  # the hash fits: the safetensors parser must refuse it
        torch.save(_model(1.0).state_dict(), st)
        _rehash(st, js)

    def garbage_header_with_hash(st, js):
        st.write_bytes(b"\xff" * 8 + b"{not json" + b"\x00" * 64)
        _rehash(st, js)

    def empty_json(st, js):
        js.write_text("{}")

    def not_json(st, js):
        js.write_text("{config: ")

    def no_hash(st, js):
        info = json.loads(js.read_text())
        del info["sha256"]
        js.write_text(json.dumps(info))

    def wrong_config(st, js):
        info = json.loads(js.read_text())
        info["config"] = {"n": 8}
        js.write_text(json.dumps(info))

    def bad_kwargs(st, js):
        info = json.loads(js.read_text())
        info["config"] = {"n": 16, "colour": "red"}
        js.write_text(json.dumps(info))

    def nan_weights(st, js):
        from safetensors.torch import save_file

        m = _model(1.0)
        save_file({"weight": m.weight.detach().clone().fill_(float("nan")), "bias": m.bias.detach()}, str(st))
        _rehash(st, js)

    return [
        ("truncated", truncate, "SHA-256 does not match", "m.safetensors"),
        ("flipped byte", flip, "SHA-256 does not match", "m.safetensors"),
        ("renamed pickle", pickle_renamed, "SHA-256 does not match", "m.safetensors"),
        ("pickle with its hash", pickle_with_its_hash, "not a valid safetensors file", "m.safetensors"),
        ("garbage header", garbage_header_with_hash, "not a valid safetensors file", "m.safetensors"),
        ("json {}", empty_json, "no 'config'", "m.json"),
        ("not json", not_json, "not valid JSON", "m.json"),
        ("no hash", no_hash, "no 'sha256'", "m.json"),
        ("config of another shape", wrong_config, "do not fit", "m.safetensors"),
        ("config with unknown keys", bad_kwargs, "does not build", "m.json"),
        ("NaN weights", nan_weights, "non-finite", "m.safetensors"),
    ]


def _rehash(st: Path, js: Path) -> None:
    import hashlib

    info = json.loads(js.read_text())
    info["sha256"] = hashlib.sha256(st.read_bytes()).hexdigest()
    js.write_text(json.dumps(info))


def test_every_kind_of_damage_is_a_value_error_naming_the_file(tmp_path):
    for i, (what, edit, words, file) in enumerate(_corrupt_cases(tmp_path)):
        d = tmp_path / str(i)
        st, js = train.save_checkpoint(d / "m", _model(1.0), {"n": 16}, {"v": 1.0})
        edit(st, js)
        with pytest.raises(ValueError) as err:
            train.load_checkpoint(d / "m", _build)
        msg = str(err.value)
        assert words in msg and file in msg, (what, msg)
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "missing")


def test_save_refuses_what_could_not_be_loaded(tmp_path):
    m = _model(float("inf"))
    with pytest.raises(ValueError, match="non-finite"):
        train.save_checkpoint(tmp_path / "m", m, {"n": 16})
    with pytest.raises(ValueError, match="config must be a dict"):
        train.save_checkpoint(tmp_path / "m", _model(1.0), [16])
    with pytest.raises(ValueError, match="JSON-serialisable"):
        train.save_checkpoint(tmp_path / "m", _model(1.0), {"n": 16}, {"x": float("nan")})
    assert not (tmp_path / "m.json").exists()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after the failing call runs, no cleanup."""


@pytest.mark.parametrize("crash_at", range(1, 7))
def test_a_save_interrupted_at_any_file_operation_leaves_a_loadable_pair(tmp_path, monkeypatch, crash_at):
    """Stop the save of version 2 at its ``crash_at``-th rename, link or unlink: the directory
    still loads as version 1 or 2, whole; the next save cleans up and succeeds."""
    train.save_checkpoint(tmp_path / "m", _model(1.0), {"n": 16}, {"v": 1.0})
    train.save_checkpoint(tmp_path / "m", _model(1.0), {"n": 16}, {"v": 1.0})
    calls = {"n": 0}

    def counting(fn):
        def wrapped(*a, **k):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise _Killed
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(train.os, "replace", counting(os.replace))
    monkeypatch.setattr(train.os, "link", counting(os.link))
    monkeypatch.setattr(train, "_fsync_dir", counting(train._fsync_dir))
    try:
        train.save_checkpoint(tmp_path / "m", _model(2.0), {"n": 16}, {"v": 2.0})
    except _Killed:
        pass
    monkeypatch.undo()
    assert _value(tmp_path / "m") in (1.0, 2.0)
    if crash_at <= 2:  # killed before the tensors moved: still the old checkpoint
        assert _value(tmp_path / "m") == 1.0
    train.save_checkpoint(tmp_path / "m", _model(3.0), {"n": 16}, {"v": 3.0})
    assert _value(tmp_path / "m") == 3.0 and _names(tmp_path) == {"m.safetensors", "m.json"}


SAVER = textwrap.dedent("""
    import sys, torch
    from diffkit import train
    path, v = sys.argv[1], 0
    m = torch.nn.Linear(512, 512)
    print("ready", flush=True)
    while True:
        v += 1
        with torch.no_grad():
            m.weight.fill_(v); m.bias.fill_(v)
        train.save_checkpoint(path, m, {"n": 512}, {"v": float(v)})
""")


def test_sigkill_during_a_loop_of_saves_leaves_a_loadable_checkpoint(tmp_path):
    """A child process saves a 1 MB checkpoint in a loop; it is killed with SIGKILL at several
    moments. What is left always loads whole (weights equal to the version its json names), and
    the next save leaves no temporary file behind."""
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    d = tmp_path / "ck"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    build = lambda cfg: torch.nn.Linear(cfg["n"], cfg["n"])  # noqa: E731
    seen = []
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, str(script), str(d / "m")], env=env, stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            deadline = time.monotonic() + 60
            while not (d / "m.json").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        m, info = train.load_checkpoint(d / "m", build)
        v = info["metadata"]["v"]
        assert bool((m.weight == v).all()) and bool((m.bias == v).all())
        seen.append(v)
    assert seen[-1] >= 1
    train.save_checkpoint(d / "m", torch.nn.Linear(512, 512), {"n": 512}, {"v": 0.0})
    assert _names(d) == {"m.safetensors", "m.json"}


@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_discrete_checkpoints_carry_their_hash_and_load(name):
    net = load_pretrained(name)
    assert not net.training
    info = train.read_checkpoint_info(Path(train.__file__).parent / "checkpoints" / name)
    assert len(info["sha256"]) == 64

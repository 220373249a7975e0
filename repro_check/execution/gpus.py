"""GPU placement: which GPUs a check may use, and the one each worker is pinned to.

Discovery asks ``nvidia-smi`` (no torch import in the parent: it costs 2 s), and only when
that is missing a throwaway interpreter with torch. The parent's own ``CUDA_VISIBLE_DEVICES``
limits what is visible. Each worker gets ``CUDA_VISIBLE_DEVICES=<uuid>`` (a UUID cannot be
renumbered by ``CUDA_DEVICE_ORDER``) and, in ``ASSIGNED_ENV``, the GPU as JSON, which the
worker's environment records.

``FAKE_ENV`` (``REPRO_CHECK_FAKE_GPUS``, a JSON list of GPU objects) replaces discovery and makes
``--device auto`` resolve to CUDA: it exists for the test suite only (placement and the report's
grouping on a machine without a GPU), never for real checks.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.errors import DeviceError
from repro_check.plan.gpu_request import is_index, parse_request

FAKE_ENV = "REPRO_CHECK_FAKE_GPUS"
"""Tests only: a JSON list of ``{"index", "name", "uuid", "driver", "compute_capability"}``."""
ASSIGNED_ENV = "REPRO_CHECK_GPU"
"""The GPU a worker is pinned to, as JSON (the worker records it in its environment)."""

_QUERY = "index,name,uuid,driver_version,compute_cap"
_PROBE = (
    "import json, torch\n"
    "out = []\n"
    "for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):\n"
    "    p = torch.cuda.get_device_properties(i)\n"
    "    u = str(getattr(p, 'uuid', '') or '')\n"
    "    out.append({'index': i, 'name': p.name, 'uuid': u and ('GPU-' + u.removeprefix('GPU-')),"
    " 'compute_capability': f'{p.major}.{p.minor}'})\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` lists it."""

    index: int
    """``nvidia-smi``'s index (what ``--gpus 0,1`` names)."""
    name: str
    uuid: str
    driver: str | None = None
    compute_capability: str | None = None

    @property
    def pin(self) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value that shows this GPU alone."""
        return self.uuid or str(self.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "driver": self.driver,
            "compute_capability": self.compute_capability,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gpu:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            index=int(data.get("index", 0)),
            name=str(data.get("name") or "unknown GPU"),
            uuid=str(data.get("uuid") or ""),
            driver=text("driver"),
            compute_capability=text("compute_capability"),
        )


def fake() -> list[Gpu] | None:
    """The test suite's GPUs (``FAKE_ENV``), or None when it is not set."""
    raw = os.environ.get(FAKE_ENV)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [Gpu.from_dict(item) for item in items]
    except (ValueError, TypeError, AttributeError) as exc:
        raise DeviceError(f"{FAKE_ENV} must be a JSON list of GPU objects ({exc})") from None


def driver_version() -> str | None:
    """The NVIDIA driver version from the kernel module, without a subprocess."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as handle:
            words = handle.readline().split()
    except OSError:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..."
    for word in words:
        if word[:1].isdigit() and "." in word:
            return word
    return None


def _nvidia_smi() -> list[Gpu] | None:
    """Every GPU ``nvidia-smi`` lists (it ignores ``CUDA_VISIBLE_DEVICES``); None without it."""
    import subprocess

    try:
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={_QUERY}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return parse_smi(result.stdout)


def parse_smi(text: str) -> list[Gpu]:
    """Rows of ``nvidia-smi --query-gpu=index,name,uuid,driver_version,compute_cap``."""
    found = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != 5 or not cells[0].isdigit():
            continue
        index, name, uuid, driver, capability = cells
        found.append(
            Gpu(
                int(index),
                name,
                uuid,
                driver or None,
                None if capability in ("", "[N/A]") else capability,
            )
        )
    return found


def _torch_probe() -> list[Gpu]:
    """The GPUs torch sees, asked of a throwaway interpreter (already filtered by the
    parent's ``CUDA_VISIBLE_DEVICES``; indices are torch's)."""
    import subprocess

    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120
        )
        items = json.loads(result.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return []
    driver = driver_version()
    return [Gpu.from_dict({**item, "driver": driver}) for item in items]


def visible(found: Sequence[Gpu], mask: str | None) -> list[Gpu]:
    """The GPUs of ``found`` that ``CUDA_VISIBLE_DEVICES=mask`` shows, in its order.

    A mask entry is an index or a UUID (or its prefix); one that matches no listed GPU (a MIG
    instance) is kept as an opaque device pinned by that entry. CUDA stops at the first
    invalid entry, and so does this."""
    if mask is None:
        return list(found)
    shown: list[Gpu] = []
    for position, entry in enumerate(e.strip() for e in mask.split(",")):
        if not entry:
            break
        if entry.isdigit():
            match = [g for g in found if g.index == int(entry)]
        elif entry.startswith(("GPU-", "MIG-")):
            match = [g for g in found if g.uuid.startswith(entry)]
            if not match:
                match = [Gpu(position, entry.split("/")[0], entry)]
        else:
            break
        if not match:
            break
        if match[0] not in shown:
            shown.append(match[0])
    return shown


def discover() -> list[Gpu]:
    """The GPUs this process may hand out: the fake ones in tests, else ``nvidia-smi``'s
    (limited by ``CUDA_VISIBLE_DEVICES``), else torch's; [] when none answers. Asked once per
    environment (``diagnose`` places many experiments)."""
    faked = fake()
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if faked is not None:
        return visible(faked, mask)
    return list(_discover(mask))


@functools.lru_cache(maxsize=4)
def _discover(mask: str | None) -> tuple[Gpu, ...]:
    listed = _nvidia_smi()
    if listed:
        shown = visible(listed, mask)
        if shown or mask == "":
            return tuple(shown)
        # a mask naming none of nvidia-smi's indices (a scheduler's cgroup may renumber the
        # GPUs it grants): ask CUDA itself, which applies the mask as the workers will
    return tuple(_torch_probe())


def select(requested: str | None, device: str, asked: str = "auto") -> list[Gpu]:
    """The GPUs a check places its replicates on: [] off CUDA (an explicit ``--gpus`` there
    is a ``DeviceError``), every visible GPU by default, else the ones ``requested`` names.
    ``asked``: the device the user asked for (``--device``), to name the conflict."""
    if device != "cuda":
        if requested is not None and asked == "cpu":
            raise DeviceError(
                f"--gpus {requested}: CUDA is not available with --device cpu (it hides the "
                "GPUs from the workers): drop one of the two"
            )
        if requested is not None:
            raise DeviceError(f"--gpus {requested}: CUDA is not available on this machine")
        return []
    found = discover()
    if requested is None or requested == "all":
        if requested is not None and not found:
            raise DeviceError("--gpus all: no GPU found (nvidia-smi and torch list none)")
        return found
    chosen = []
    for name in parse_request(requested):
        match = [g for g in found if _matches(g, name)]
        if not match:
            listed = ", ".join(str(g.index) for g in found) or "none"
            raise DeviceError(f"--gpus {requested}: no GPU {name} here (visible: {listed})")
        chosen.append(match[0])
    return chosen


def _matches(gpu: Gpu, name: str) -> bool:
    return str(gpu.index) == name if is_index(name) else gpu.uuid.startswith(name)


def assigned() -> dict[str, Any] | None:
    """In a worker: the GPU the parent pinned it to (``ASSIGNED_ENV``), or None."""
    raw = os.environ.get(ASSIGNED_ENV)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return Gpu.from_dict(data).to_dict() if isinstance(data, dict) else None

"""Script mode in the worker: run the user's script whole (``execution.script`` hooks Optuna
first), then stream every study it made, copy them into a shared check's storage, and end with
``done`` or the error that makes the run a crash.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from repro_check.errors import TargetError
from repro_check.execution import controls as ctl
from repro_check.execution import environment, script
from repro_check.execution.protocol import (
    Done,
    Error,
    JobSpec,
    ScriptSpec,
)
from repro_check.execution.target import one_line
from repro_check.execution.worker_stream import (
    Stream,
    audit_report,
    emit_trace,
    named_op,
    readable,
    refused_op_message,
    traced,
)
from repro_check.plan.settings import Controls


def run_script_job(
    job: JobSpec, out: Stream, ops: list[str], torch_status: str, audit: Any = None
) -> None:
    """Script mode: run the script whole, then stream every study it made (``script``)."""
    controls = Controls.from_dict(job.controls)
    seed = job.seed
    spec = job.script
    assert spec is not None

    def reseed(number: int) -> None:
        ctl.seed_global_rngs(ctl.trial_seed(seed, number))

    # a shared check's storage opens once the script has ended (opening it loads optuna and
    # numpy, which the script must load itself); its URL is pinned to this folder now
    shared = _SharedStorage(job.storage, str(job.study_name)) if job.storage else None
    resume = spec.resume  # run --resume-at: the replicate's folder, phase 1 or 2
    folder = resume.dir if resume else script.private_dir()
    capture = script.Capture(
        seed,
        controls.sampler_seed,
        reseed if controls.trial_reseed else None,
        job.cap,
        folder,
        keep_copies=bool(resume),
        resumed=script.read_base(folder) if resume and resume.phase == 2 else None,
    )
    capture.hooks.audit = audit
    capture.registry.out = out  # studies and trials stream as the script makes and tells them
    if job.trace and job.trace_at:
        from repro_check.execution.linetrace import LineTrace, TorchOps

        capture.hooks.tracer = LineTrace()
        capture.hooks.tracer.torch_ops = TorchOps()
        capture.hooks.trace_at = job.trace_at
        capture.hooks.traced = traced
    capture.install()
    started = time.perf_counter()
    ending = _ScriptEnd(capture, job, out, ops, torch_status, folder, started, shared, audit)

    def swallowed(reached: BaseException) -> None:
        ending.end(reached)
        sys.stderr.flush()
        os._exit(0)

    capture.hooks.on_swallowed = swallowed
    finished, ended = _run_script(spec, out)
    if not finished:
        return
    script.finish()  # the script's threads and atexit handlers, as at `python`'s exit
    ending.end(ended)


@dataclasses.dataclass
class _ScriptEnd:
    """Script mode's end: the studies into a shared storage (if any), every study's trials,
    then ``done`` (or the error)."""

    capture: script.Capture
    job: JobSpec
    out: Stream
    ops: list[str]
    torch_status: str
    folder: str
    started: float
    shared: Any
    audit: Any

    def end(self, ended: BaseException | None) -> None:
        capture, job, out, ops = self.capture, self.job, self.out, self.ops
        capture.watching = False
        controls = Controls.from_dict(job.controls)
        spec = job.script
        assert spec is not None
        name = str(spec.name or spec.path or spec.module)
        problem = script.outcome(ended, capture)
        if not capture.registry.entries:
            if problem is not None:
                out.emit(Error(kind="script", message=readable(problem)))
            else:
                out.emit(Error(kind="target", message=f"{name} ran but created no Optuna study"))
            return
        opened = self.shared.open() if self.shared is not None else None
        if isinstance(opened, str):
            out.emit(Error(kind="config", message=opened))
            return
        failure = _store_studies(capture, opened, str(job.storage))
        if failure is not None:
            out.emit(Error(kind="script", message=failure, ops=ops))
            return
        capture.registry.emit(out)  # user attrs, errors, study info: bounded, compared whole
        capture.hooks.stop_trace()
        if (
            capture.hooks.tracer is not None and capture.hooks.tracer.started
        ):  # the traced trial ran
            emit_trace(out, capture.hooks.tracer)
        if spec.resume and spec.resume.phase == 1:
            capture.registry.save_base()  # for the resuming process, in the folder the parent keeps
        if problem is not None:
            out.emit(Error(kind="script", message=readable(problem), ops=ops))
            return
        refused = _refused_op(capture)
        if refused is not None and controls.torch_determinism:
            out.emit(Error(kind="determinism", message=refused, ops=ops))
            return
        out.emit(
            Done(
                wall_s=time.perf_counter() - self.started,
                environment=environment.collect(job.threads if controls.threads else None),
                notes=self._notes(ended, job.cap),
                nondeterministic_ops=ops,
                studies=len(capture.registry.entries),
                audit=audit_report(self.audit),
            )
        )

    def _notes(self, ended: BaseException | None, cap: int | None) -> list[str]:
        from repro_check.results.script_notes import WRITTEN_PREFIX

        capture = self.capture
        notes = [*capture.notes, *capture.registry.restarted()]
        if capture.writes.written:
            notes.append(WRITTEN_PREFIX + ", ".join(sorted(capture.writes.written)[:5]))
        if isinstance(ended, script.CapReached):
            notes.append(
                f"--trials {cap}: study {ended.name!r} reached the cap in an ask/tell loop; the "
                "script stopped there"
            )
        note = ctl.torch_note(self.torch_status)
        if note:
            notes.append(note.replace("the objective", "the script"))
        if (
            self.job.script is None or not self.job.script.resume
        ):  # a resume check's parent removes its own
            shutil.rmtree(self.folder, ignore_errors=True)
        return notes


def _refused_op(capture: script.Capture) -> str | None:
    """The error of a trial that torch refused for lacking a deterministic kernel, if any."""
    op = next(
        (o for e in capture.registry.entries for m in e.errors.values() if (o := named_op(m))), None
    )
    return None if op is None else refused_op_message(op)


def _run_script(spec: ScriptSpec, out: Stream) -> tuple[bool, BaseException | None]:
    """Run the script; (False, None) when it could not start (its error is already sent:
    no such file or module, a syntax error in it), else (True, how it ended)."""
    try:
        script.run(spec)
    except TargetError as exc:
        out.emit(Error(kind="target", message=str(exc)))
        return False, None
    except SyntaxError as exc:
        if exc.filename and os.path.abspath(exc.filename) == os.path.abspath(spec.path or ""):
            message = f"syntax error in {exc.filename}, line {exc.lineno}: {exc.msg}"
            out.emit(Error(kind="target", message=message))
            return False, None
        return True, exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return True, exc
    return True, None


class _SharedStorage:
    """A shared check's storage, opened when the script has ended (the hooks then leave it
    alone: ``Capture.watching`` is off). A relative file path is pinned to the folder the check
    started in, when this is made: the script may change its working folder."""

    def __init__(self, url: str, claimed: str) -> None:
        self.url = url
        self.claimed = claimed
        self.folder = os.getcwd()  # nothing imported now (SQLAlchemy reads the URL later)

    def open(self) -> tuple[Any, str] | str:
        """(storage, claimed study name), or why the storage cannot be opened."""
        from repro_check.storage.store import absolute_url, open_storage

        try:
            return open_storage(absolute_url(self.url, self.folder)), self.claimed
        except Exception as exc:
            return f"cannot open the storage: {one_line(exc)}"


def _store_studies(capture: script.Capture, shared: tuple[Any, str] | None, url: str) -> str | None:
    """A shared check: copy every study the script made, in order, into the check's storage
    under the claimed replicate (``<claimed>/study-<i>``), before the parent hears of them.
    None when done (or nothing to do: a local check), else why not (one line, the storage's
    password masked)."""
    if shared is None:
        return None
    from repro_check.redact import redact_text
    from repro_check.storage.store import store_script_study

    storage, claimed = shared

    for index, entry in enumerate(capture.registry.entries):
        info = entry.record().to_dict(with_trials=False)
        info.pop("trials")
        finished = [t for t in capture.registry.readable_trials(entry) if t.state.is_finished()]
        trials = [(t, _maybe(readable, capture.registry.error_of(entry, t))) for t in finished]
        try:
            store_script_study(storage, claimed, index, readable(info), trials, readable)
        except Exception as exc:
            message = redact_text(one_line(exc), url) or ""
            return f"cannot store study {index} in the check's storage: {message}"
    return None


def _maybe(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)

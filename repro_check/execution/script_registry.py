"""Script mode's study registry: every study the script made or loaded, in creation order,
with how its sampler was built, its cap, and each trial's error; each study announced to the
parent when it is made and each trial streamed as the script tells it (``announce``,
``told``); and, once the script has ended, every finished trial not streamed yet (added with
``add_trial``, or loaded from a storage), then each study's own view of its trials, from its
storage, which the parent checks the streamed ones against.

The Optuna hooks (``script_hooks``) feed it; nothing here patches anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from repro_check.execution.protocol import StudyDone, StudyInfo, Trial, content_digest, trial_hash
from repro_check.execution.script_children import ChildTripwire
from repro_check.execution.script_studies import AUTO_NAME, StudyEntry
from repro_check.execution.target import one_line
from repro_check.execution.userframes import user_location
from repro_check.json_values import bounded
from repro_check.results.records import SamplerInfo, trials_digest
from repro_check.results.resume import RESTARTED
from repro_check.results.trial_record import TrialRecord, pending_key

if TYPE_CHECKING:
    from repro_check.execution.sampler_owner import Owner
    from repro_check.execution.worker_stream import Stream

RESUME_BASE = "resume-base.json"
"""``run SCRIPT --resume-at K``: the file, in the replicate's private folder, where the first
process leaves how many trials it added to each study (by name); the resuming process reads it
to cap each study it loads so that it ends at ``--trials`` trials in all."""


class StudyRegistry:
    """The studies the hooks saw, and what the script asked of each."""

    def __init__(
        self,
        seed: int,
        seed_samplers: bool,
        cap: int | None,
        private_dir: str,
        children: ChildTripwire,
        watching: Callable[[], bool],
        resumed: Mapping[str, int] | None = None,
    ) -> None:
        self.seed = seed
        self.seed_samplers = seed_samplers
        self.cap = cap
        self.private_dir = private_dir
        self.children = children
        self.watching = watching
        """The script still runs (a study unpickled after it is the check's own doing)."""
        self.resumed = resumed
        """The resuming process: the trials the first process added to each study (by name),
        read from its ``RESUME_BASE``; None in any other run."""
        self.entries: list[StudyEntry] = []
        self._by_id: dict[int, StudyEntry] = {}
        self.samplers: dict[int, tuple[Any, SamplerInfo]] = {}
        """Each sampler the script built (by id), with how it built it."""
        self.local = threading.local()
        """Per thread: inside a sampler's ``__init__`` (``depth``), building Optuna's default
        sampler (``internal``), pickling a sampler for its digest (``fingerprinting``)."""
        self.lock = threading.Lock()
        self.unseen: str | None = None
        """Why a study the script ran could not be recorded (``adopt``): a crash."""
        self.get_trials: Callable[..., Any] | None = None
        """Optuna's own ``Study.get_trials``, kept before the script can replace it."""
        self.pid = os.getpid()
        """The script's own process: a study made in a forked child of it is not recorded."""
        self.study_class: Any = None
        """The Study class the hooks are on (``reloaded``)."""
        self._copied: dict[str, SamplerInfo] = {}
        """How the script built each sampler it pickled with a study (``remember_sampler``),
        by the digest of its pickled state."""
        self.out: Stream | None = None
        """The worker's stream: set, studies and trials go out as they come."""
        self.stream_lock = threading.RLock()
        """One trial's check-and-send at a time (``n_jobs`` tells from several threads)."""

    def entry(self, study: Any) -> StudyEntry | None:
        return self._by_id.get(id(study))

    def register(self, study: Any, default: bool, owner: Owner | None = None) -> None:
        """Record a study ``Study.__init__`` built. ``default``: with Optuna's default sampler
        (seeded under ``sampler_seed``); ``owner``: an integration's call built it, whose own
        seed parameter then seeds that sampler."""
        at = user_location()
        if os.getpid() != self.pid:
            self.children.note(study, at)
            return
        known = self.known_sampler(study.sampler)
        if known is not None:
            info = known
        else:
            name = type(study.sampler).__name__
            seeded = default and self.seed_samplers
            if owner is not None:
                info = SamplerInfo(name, None, owner.at, seeded, owner.param, owner.via)
            else:
                info = SamplerInfo(name, None, None if default else at, seeded)
        self._record(study, at, info)

    def adopt(self, study: Any, how: str) -> StudyEntry | None:
        """Record a study the script holds that no ``Study.__init__`` built (``how``: it was
        unpickled or copied), as it is now; None in another process than the script's, or
        once the script ended. Its sampler is the one the script built when this process
        pickled it (``remember_sampler``), else ``Cls (unpickled)`` where the script got it:
        the check cannot know how a sampler pickled elsewhere was seeded."""
        if not self.watching() or os.getpid() != self.pid:
            return None
        entry = self.entry(study)
        if entry is not None:
            return entry
        at = user_location()
        sampler = getattr(study, "sampler", None)
        info = self.known_sampler(sampler)
        if info is None:
            info = self._copied.get(self._fingerprint(sampler) or "")
        if info is None:
            info = SamplerInfo(f"{type(sampler).__name__} ({how})", None, at, False)
        try:
            return self._record(study, at, info)
        except Exception as exc:  # its storage cannot be read now: Optuna may say why later
            if how == "copied" and self.unseen is None:  # it is asked for trials all the same
                name = str(getattr(study, "study_name", "?"))
                self.unseen = (
                    f"the script ran study {name!r}{f' at {at}' if at else ''}, which "
                    f"repro-check could not read when it met it ({one_line(exc)}): its "
                    "trials cannot be compared"
                )
            return None

    def _record(self, study: Any, at: str | None, info: SamplerInfo) -> StudyEntry:
        entry = StudyEntry(
            study=study,
            at=at,
            sampler=info,
            pruner=type(study.pruner).__name__ if study.pruner is not None else None,
            initial=len(self.trials_of(study)),
        )
        entry.limit = self._limit(entry)
        with self.lock:
            found = self._by_id.get(id(study))
            if found is not None and found.study is study:
                return found
            entry.index = len(self.entries)
            self.entries.append(entry)
            self._by_id[id(study)] = entry
            self.announce(entry)  # in the lock: announced in creation order
        return entry

    def announce(self, entry: StudyEntry) -> None:
        """Tell the parent about ``entry``'s study as it is now (made, or asked for trials);
        never from a forked child (the tripwire makes that run a crash)."""
        if self.out is None or os.getpid() != self.pid:
            return
        info = entry.record().to_dict(with_trials=False)
        info.pop("trials")
        with self.stream_lock:
            if self.out is not None:
                self.out.emit(
                    StudyInfo(study=entry.index, info=bounded(info), planned=entry.planned)
                )

    def told(self, entry: StudyEntry, frozen: Any) -> None:
        """The script told trial ``frozen`` of ``entry``'s study: stream it now, once it is
        finished (not again at the end; the end checks it against the study's final state)."""
        if os.getpid() != self.pid or not frozen.state.is_finished():
            return
        with self.stream_lock:  # the end (``emit``) takes it too: then nothing streams live
            if self.out is None or frozen.number in entry.streamed:
                return
            entry.streamed.add(frozen.number)
            self.out.emit(Trial(study=entry.index, trial=self.trial_data(entry, frozen)))

    def told_all(self, entry: StudyEntry) -> None:
        """Stream every finished trial of ``entry``'s study not streamed yet (an ``optimize``
        call ended: its last trial may have failed past the callbacks)."""
        if self.out is None or os.getpid() != self.pid:
            return
        for frozen in self.readable_trials(entry):
            self.told(entry, frozen)

    def trial_data(self, entry: StudyEntry, frozen: Any) -> dict[str, Any]:
        """A finished trial as the ``trial`` event carries it (bounded as a report holds it)."""
        record = TrialRecord.from_frozen(frozen, error=self.error_of(entry, frozen))
        data = record.to_dict()
        data["user_attrs"] = bounded(data["user_attrs"])
        if data["error"] is not None:
            data["error"] = bounded(data["error"])
        return data

    def known_sampler(self, sampler: Any) -> SamplerInfo | None:
        """How the script built ``sampler``, if this process saw it built."""
        known = self.samplers.get(id(sampler))
        return known[1] if known is not None and known[0] is sampler else None

    def remember_sampler(self, study: Any) -> None:
        """The script pickles (or deep-copies) ``study``: remember how its sampler was built,
        under the digest of the sampler's pickled state, which a copy of it shares."""
        if os.getpid() != self.pid or getattr(self.local, "fingerprinting", False):
            return
        entry = self.entry(study)
        sampler = getattr(study, "sampler", None)
        info = entry.sampler if entry is not None else self.known_sampler(sampler)
        if info is None:
            return
        found = self._fingerprint(sampler)
        if found is not None:
            self._copied[found] = info

    def _fingerprint(self, sampler: Any) -> str | None:
        """The digest of ``sampler``'s pickled state (None: it cannot be pickled)."""
        if sampler is None:
            return None
        self.local.fingerprinting = True  # a sampler holding a study pickles it too
        try:
            data = pickle.dumps(sampler, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        finally:
            self.local.fingerprinting = False
        return f"{type(sampler).__qualname__}:{hashlib.sha256(data).hexdigest()}"

    def _limit(self, entry: StudyEntry) -> int | None:
        """The cap of ``entry``'s study: ``--trials``; in the resuming process of a resume
        check, a study loaded with trials runs only what makes ``--trials`` in all (a study
        kept in memory starts over: it runs them all)."""
        if self.cap is None:
            return None
        if self.resumed is None or entry.initial == 0:
            return self.cap
        return max(self.cap - self.resumed.get(str(entry.study.study_name), 0), 0)

    def save_base(self) -> None:
        """The first process of a resume check: leave, for the resuming one, how many trials
        this run added to each study (its trials now, less those it held when first opened)."""
        first: dict[str, int] = {}
        added: dict[str, int] = {}
        for entry in self.entries:
            name = str(entry.study.study_name)
            first.setdefault(name, entry.initial)
            added[name] = len(self.trials_of(entry.study)) - first[name]
        with open(os.path.join(self.private_dir, RESUME_BASE), "w", encoding="utf-8") as file:
            json.dump(added, file)

    def restarted(self) -> list[str]:
        """The resuming process: a note for each study that did not load the trials the
        first process ran in it (kept in memory, or in a storage the first did not fill)."""
        if self.resumed is None:
            return []
        notes = []
        for index, entry in enumerate(self.entries):
            name = str(entry.study.study_name)
            if entry.initial > 0 and self.resumed.get(name, 0) > 0:
                continue
            unnamed = AUTO_NAME.fullmatch(name)
            label = f"study {index}" if unnamed else f"study {index} {name!r}"
            notes.append(
                f"{label}: the restarted script did not load the trials its first run added "
                f"(it keeps the study in memory, or opens it afresh), {RESTARTED}"
            )
        return notes

    def trials_of(self, study: Any) -> list[Any]:
        """The study's trials as Optuna's own ``get_trials`` reads them (a script that replaces
        ``Study.get_trials`` does not choose what is compared)."""
        get = self.get_trials if self.get_trials is not None else type(study).get_trials
        return list(get(study, deepcopy=False))

    def readable_trials(self, entry: StudyEntry) -> list[Any]:
        """``trials_of`` the entry's study, or [] once the script deleted it (``deleted``)."""
        try:
            return self.trials_of(entry.study)
        except KeyError:  # optuna.delete_study: its storage no longer knows the study
            return []

    def reloaded(self) -> str | None:
        """Why the run cannot count because the script reloaded Optuna's study module (its
        new ``Study`` class has none of the hooks: the studies made after it are unseen)."""
        module = sys.modules.get("optuna.study.study")
        if self.study_class is None or getattr(module, "Study", None) is self.study_class:
            return None
        return (
            "the script reloaded Optuna's study module (importlib.reload): studies it made "
            "after that bypass repro-check's hooks, so they cannot be compared"
        )

    def deleted(self) -> str | None:
        """Why the run cannot count because the script deleted a study it made, or None."""
        for entry in self.entries:
            try:
                self.trials_of(entry.study)
            except KeyError:
                return (
                    f"the script deleted study {str(entry.study.study_name)!r} "
                    "(optuna.delete_study) before it ended: its trials can no longer be read, "
                    "so they cannot be compared"
                )
        return None

    def emit(self, out: Stream) -> int:
        """At the script's end: every study's finished trials not streamed yet, then its
        ``study_done``, which says what the study holds now (count, states and a digest of
        every trial's fields, from its storage); returns the studies' count."""
        with self.stream_lock:
            self.out = None  # nothing streams live any more: the script has ended
            for entry in self.entries:
                self._emit_study(out, entry)
        return len(self.entries)

    def _emit_study(self, out: Stream, entry: StudyEntry) -> None:
        trials = self.readable_trials(entry)
        finished = sorted((t for t in trials if t.state.is_finished()), key=lambda t: t.number)
        entry.pending = tuple(pending_key(t) for t in trials if not t.state.is_finished())
        hashes = []
        for frozen in finished:
            data = self.trial_data(entry, frozen)
            hashes.append((int(frozen.number), trial_hash(data)))
            if frozen.number not in entry.streamed:
                entry.streamed.add(frozen.number)
                out.emit(Trial(study=entry.index, trial=data))
        info = entry.record().to_dict(with_trials=False)
        info.pop("trials")
        out.emit(
            StudyDone(
                study=entry.index,
                emitted=len(entry.streamed),
                count=len(finished),
                digest=trials_digest((int(t.number), t.state.name) for t in finished),
                stopped=False,
                info=bounded(info),
                content=content_digest(hashes),
            )
        )

    @staticmethod
    def error_of(entry: StudyEntry, frozen: Any) -> str | None:
        if frozen.state.name != "FAIL":
            return None
        error = entry.errors.get(frozen.number)
        if error is None and frozen.number in entry.returned:
            returned = entry.returned[frozen.number]
            error = f"objective returned {returned!r}"
            if returned is None:
                error += " (is a `return` missing?)"
        return error

    def running_trial(self) -> str | None:
        """``trial N of study 'x'`` for a trial asked and never told, else None."""
        for entry in self.entries:
            for t in self.readable_trials(entry):
                if t.state.name == "RUNNING":
                    return f"trial {t.number} of study {entry.study.study_name!r}"
        return None


def read_base(folder: str) -> dict[str, int]:
    """What ``StudyRegistry.save_base`` left in ``folder`` (nothing: no study held trials)."""
    try:
        with open(os.path.join(folder, RESUME_BASE), encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

"""Script mode's child tripwire: a study made in another process than the script's own.

Such a study's trials live out of the check's sight (or race the script's through a shared
storage), so the run cannot count. A forked child still has the capture's hooks and notes the
study itself (``ChildTripwire.note``); a Python process the script starts (a spawned
``multiprocessing`` worker, a subprocess) gets a ``sitecustomize`` on its ``PYTHONPATH``
(``_TRIPWIRE``) that does the same; both write a line to one file in the private folder,
which ``reason`` reads once the script has ended.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from repro_check.execution.script_studies import shown_study

CHILD_ENV = "REPRO_CHECK_CHILD_STUDIES"
"""The file a Python child of the script (a spawned ``multiprocessing`` worker, a
subprocess) writes a line to when it creates an Optuna study or asks one for trials
(``_TRIPWIRE``)."""

CHAIN_SITECUSTOMIZE = """def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    me = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if "sitecustomize" not in sys.modules and me is not None:
            sys.modules["sitecustomize"] = me  # the import system pops it when this one ends"""
"""``_chain()``, for a ``sitecustomize`` the check writes: runs the one it shadows (the
user's own, further on the path), if any."""

_TRIPWIRE = (
    '''"""repro-check: a Python process the checked script started. When it creates an
Optuna study, or asks one for trials (a study it unpickled: a spawned multiprocessing worker's
argument), a line goes to the file the environment names: the check never sees that study's
trials, so the run cannot count. Then the sitecustomize this one shadows, if any, runs."""
import os
import sys


def _tripwire():
    path = os.environ.get("REPRO_CHECK_CHILD_STUDIES")
    if not path:
        return

    class Finder:
        def find_spec(self, name, target=None, *args):
            if name != "optuna.study.study":
                return None
            import importlib.util

            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
                init, ask = module.Study.__init__, module.Study.ask
                told = set()

                def tell(study, did):
                    if id(study) in told:
                        return
                    told.add(id(study))
                    frame, where = sys._getframe(2), ""
                    while frame is not None:
                        name = frame.f_code.co_filename
                        if "optuna" not in name.replace(os.sep, "/").split("/")[-3:-1]:
                            where = " at %s:%d" % (name, frame.f_lineno)
                            break
                        frame = frame.f_back
                    name = str(study.study_name)
                    shown = "an unnamed study" if name.startswith("no-name-") else "study %r" % name
                    line = "%s %s%s in a Python process it started (pid %d: a spawned " \\
                        "multiprocessing worker or a subprocess)" % (did, shown, where, os.getpid())
                    try:
                        with open(path, "a") as file:
                            file.write(line.replace("\\n", " ") + "\\n")
                    except OSError:
                        pass

                def hooked(study, *a, **k):
                    init(study, *a, **k)
                    tell(study, "created")

                def asked(study, *a, **k):  # one it created, or one it unpickled
                    tell(study, "asked for trials of")
                    return ask(study, *a, **k)

                module.Study.__init__ = hooked
                module.Study.ask = asked

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


'''
    + CHAIN_SITECUSTOMIZE
    + """


_tripwire()
_chain()
"""
)


class ChildTripwire:
    """The file a study made in another process is noted in, and the hooks that note it."""

    def __init__(self, private_dir: str) -> None:
        self.private_dir = private_dir
        self.file = os.path.join(private_dir, "child-studies")
        self._noted: set[int] = set()
        """Studies a forked child already told on (``note``), in that child."""

    def arm(self) -> None:
        """Python processes the script starts (a spawned or forkserver ``multiprocessing``
        worker, ``subprocess.run([sys.executable, ...])``) get none of these hooks: a
        ``sitecustomize`` on their ``PYTHONPATH`` notes each study they create instead, in the
        file a forked child writes too (``reason``)."""
        site = os.path.join(self.private_dir, "site")
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, "sitecustomize.py"), "w", encoding="utf-8") as file:
            file.write(_TRIPWIRE)
        paths = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = site + (os.pathsep + paths if paths else "")
        os.environ[CHILD_ENV] = self.file

    def note(self, study: Any, at: str | None, did: str = "created") -> None:
        """A study made, or asked for trials, in a forked child of the script (``os.fork``,
        a ``multiprocessing`` fork worker): those trials live in that process (or race the
        script's through a shared storage) out of the check's sight, so the child leaves a
        line in the private folder and the run cannot count (``outcome``)."""
        if id(study) in self._noted:
            return
        self._noted.add(id(study))
        shown = shown_study(str(study.study_name))
        where = f" at {at}" if at else ""
        line = f"{did} {shown}{where} in a forked child process (pid {os.getpid()})"
        with contextlib.suppress(OSError), open(self.file, "a") as file:
            file.write(line.replace("\n", " ") + "\n")

    def reason(self) -> str | None:
        """Why the run cannot count because the script made a study in another process (a
        fork of it, or a Python process it started), or None."""
        try:
            with open(self.file) as file:
                first = file.readline().strip()
        except OSError:
            return None
        if not first:
            return None
        return (
            f"the script {first}: repro-check records the studies of the script's own "
            "process only, so that study's trials cannot be compared; run the study in the "
            "script's own process"
        )

"""What every tool shares: one-line errors, exit codes, ``--debug``."""
from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

from .errors import I2IError, one_line, write_reason

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1


def _say_error(line: str) -> None:
    """``error: …`` on stderr; under ``accelerate launch``, without the launcher's traceback
    (:func:`i2i.distributed.end_launcher_quietly`)."""
    from .distributed import end_launcher_quietly

    if not end_launcher_quietly(line):
        print(line, file=sys.stderr)


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``main``; user errors print ``error: <one line>`` (traceback only with --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("I2I_DEBUG") == "1"
    from .perf import tune_allocator

    tune_allocator()  # large activations from the heap, not fresh mmaps (see its docstring)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except I2IError as e:
        if debug:
            raise
        _say_error(f"error: {one_line(str(e))}")
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001  (a bug or an environment problem: still one line)
        if debug:
            raise
        if isinstance(e, OSError) and e.filename:  # a path that cannot be written or read (read-only, full): name it
            reason = write_reason(e) or e.strerror or str(e)
            verb = "cannot write: " if e.errno in (errno.EROFS, errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else ""
            _say_error(f"error: {one_line(str(e.filename))}: {verb}{one_line(reason)}")
            return EXIT_USER_ERROR
        msg = one_line(str(e).strip().splitlines()[0]) if str(e).strip() else ""
        print(f"error: {type(e).__name__}: {msg} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        from .distributed import shutdown

        shutdown()

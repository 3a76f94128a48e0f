"""TensorFlow's start-up noise kept off the console of the command-line programs.

Importing TensorFlow and initialising its platforms prints a block from C++ before any log
level applies ("All log messages before absl::InitializeLog() ...", "Could not find cuda
drivers", "failed call to cuInit", the oneDNN and CPU-instruction notices). ``import_quietly``
does both with the process's stderr (file descriptor 2) sent to a temporary file, then writes
back every line that is not one of those notices, so real errors and warnings still show.
Later C++ INFO lines (TF_CPP_MIN_LOG_LEVEL=1 unless set) are dropped too. ``--verbosity`` (or
``-v``) on the command line keeps everything.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import sys
import tempfile

# Fragments of the start-up lines that say nothing to a user of a CPU machine.
NOISE = ("All log messages before absl::InitializeLog()", "cudart_stub.cc",
         "cuda_platform.cc", "failed call to cuInit", "oneDNN custom operations are on",
         "To enable the following instructions", "rebuild TensorFlow with the appropriate",
         "This TensorFlow binary is optimized", "Unable to register cu",
         "computation_placer.cc", "TF-TRT Warning", "cuda_executor.cc", "cuda_dnn.cc",
         "cuda_fft.cc", "cuda_blas.cc", "Attempting to register factory")


def _flush_c_streams() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to call: nothing buffered there either
        pass


def _verbose(argv) -> bool:
    return any(arg.startswith(("--verbosity", "-v")) for arg in argv[1:])


class _LibraryInfoFilter(logging.Filter):
    """Drops INFO (and DEBUG) records logged from inside TensorFlow's or Keras' own code."""

    def __init__(self, folders):
        super().__init__()
        self.folders = tuple(folders)

    def filter(self, record) -> bool:
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.folders)


def _drop_library_info() -> None:
    """TensorFlow logs some INFO lines through absl (its checkpoint saver's timing); tfgender's
    own INFO lines go through absl too, so the filter goes by the calling file, not the level."""
    import keras
    import tensorflow as tf
    from absl import logging as absl_logging

    folders = [os.path.dirname(module.__file__) + os.sep for module in (tf, keras)]
    # TensorFlow's Python code lives under tensorflow/ (tf.__file__ may be the API shim).
    folders += [os.path.join(os.path.dirname(os.path.dirname(tf.__file__)), name) + os.sep
                for name in ("tensorflow", "keras", "tf_keras")]
    absl_logging.get_absl_handler().addFilter(_LibraryInfoFilter(folders))


def import_quietly(argv=None) -> None:
    """Imports TensorFlow and lists its devices with the start-up notices filtered out.

    Listing physical devices initialises the platforms (where cuInit is called) but not the
    logical devices, so ``distribute.set_cpu_devices`` still works afterwards.
    """
    if "tensorflow" in sys.modules or _verbose(sys.argv if argv is None else argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO lines; warnings still show
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            tf.get_logger().setLevel("WARNING")
            _drop_library_info()  # e.g. "Sharding callback duration: 48 microseconds"
        finally:
            sys.stderr.flush()
            _flush_c_streams()  # C stdio may hold some of it: into the capture, not later
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines(keepends=True):
            if not any(fragment in line for fragment in NOISE):
                sys.stderr.write(line)


_DEVNULL = None


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Sends file descriptor 2 to /dev/null for the block: for a call whose failure the caller
    reports itself in one line, and whose C and C++ libraries print their own about it
    (libjpeg's "Improper call to JPEG library in state 201", TensorFlow's "Local rendezvous is
    aborting" warning about a corrupt image). Python's own ``sys.stderr`` is flushed first, so
    nothing written before the block is lost; ``-v`` on the command line keeps everything."""
    global _DEVNULL
    if not enabled or _verbose(sys.argv):
        yield
        return
    if _DEVNULL is None:  # opened once per process: the block wraps every image of a conversion
        _DEVNULL = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(_DEVNULL, 2)
    try:
        yield
    finally:
        _flush_c_streams()
        os.dup2(saved, 2)
        os.close(saved)


def silence_native_stderr_at_exit() -> None:
    """At exit, after the program's last line: TensorFlow's runtime, destroyed then, logs
    "Local rendezvous is aborting with status: ABORTED: Shutdown" when a traced function
    failed earlier (a corrupt image that a conversion skipped and reported)."""
    def silence() -> None:
        if _verbose(sys.argv):
            return
        sys.stderr.flush()
        _flush_c_streams()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    atexit.register(silence)


__all__ = ["NOISE", "import_quietly", "native_stderr_silenced", "silence_native_stderr_at_exit"]

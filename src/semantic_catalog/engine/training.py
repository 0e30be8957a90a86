"""What the trainers of sentence-transformers and transformers print (weight loading bars, a dict of
metrics per log step, model card notes), shown only when the caller shows progress: `--quiet` means
quiet, and a library's progress never mixes into a command's own report."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator


@contextlib.contextmanager
def library_output(shown: bool) -> Iterator[None]:
    """Run the block with the training libraries' stdout and stderr kept (``shown``) or dropped."""
    if shown:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield

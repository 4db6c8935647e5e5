"""Deprecated alias of :mod:`dippas.assembly.run` (the run bridge now lives in the assembly package).

Import ``RunAssembler``, ``RunAssembly``, ``assemble_run`` and ``DEFAULT_BLOCKS``
from :mod:`dippas.assembly` instead; this module goes in the next release.
"""

from __future__ import annotations

import warnings

from .assembly import DEFAULT_BLOCKS, RunAssembler, RunAssembly, assemble_run, cell_size_of

warnings.warn("dippas.run_assembly is deprecated; import from dippas.assembly",
              DeprecationWarning, stacklevel=2)

__all__ = ["DEFAULT_BLOCKS", "RunAssembler", "RunAssembly", "assemble_run", "cell_size_of"]

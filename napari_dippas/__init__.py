"""napari-dippas: the napari plugin over the headless ``dippas`` core.

The plugin is thin: widgets call the core in thread workers; torch is
imported lazily, only when an inversion starts. The manifest is
``napari.yaml`` at the project root, reachable here as
``napari_dippas/napari.yaml`` (a symbolic link) so npe2 finds it.
"""

__version__ = "0.1.0"

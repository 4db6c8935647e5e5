"""Workers of the plugin: core computations in threads, reporting typed events.

- :mod:`.events`: the event dataclasses widgets receive;
- :mod:`.core_task`: :class:`CoreTask`, a core call in a plain thread with a
  cancel token and an event queue, and :func:`start_task`'s napari worker;
- :mod:`.inversion`: the DIPPAS inversion as a stream of events;
- :mod:`.inpainting`: the inpainting job and its report in one call.

Nothing here draws: widgets hold the controls and callbacks only.
"""

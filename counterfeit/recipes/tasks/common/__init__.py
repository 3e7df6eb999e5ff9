"""Helpers that several tasks share, so that no task imports another (or a command).

:mod:`.adaptation` for the adaptation tasks, :mod:`.attacks` for the attack tasks,
:mod:`.generation` for the GAN tasks.
"""

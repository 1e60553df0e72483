"""``animate-anyone app``: a Gradio page over the library (``service.py`` does the work, ``ui.py`` is the page).

Needs the ``app`` extra (``pip install -e ".[app]"`` in the animate-anyone checkout; the package is not on PyPI:
:func:`animate_anyone.extras.install_hint`); nothing here imports Gradio until the page is built.
"""

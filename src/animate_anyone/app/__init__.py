"""``animate-anyone app``: a Gradio page over the library (``service.py`` does the work, ``ui.py`` is the page).

Needs the ``app`` extra (``pip install "animate-anyone[app]"``); nothing here imports Gradio until the page is built.
"""

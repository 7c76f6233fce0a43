"""The studio: a Streamlit page over `portrait_studio` (`streamlit run streamlit_app.py`).

The only package that imports streamlit. Each section (portrait, driver, direction, render) maps its
widgets to inputs and options and calls the application; nothing here decides how a video is made.
"""

from .app import main

__all__ = ["main"]

"""Portrait Studio in the browser: `streamlit run streamlit_app.py` (binds to 127.0.0.1, see .streamlit/)."""

from portrait_studio.ui import main

main()

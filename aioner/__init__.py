"""AIONER toolkit: train, share and run all-in-one biomedical NER models the Hugging Face way.

The files that travel inside every checkpoint live at the top level of the
source tree (``modeling_aioner.py``, ``pipeline_aioner.py``, ``aioner_scheme.py``,
``aioner_text.py``); this package holds what only users of the toolkit need.
"""

__version__ = "0.1.0"

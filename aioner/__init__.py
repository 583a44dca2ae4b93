"""AIONER toolkit: train, share and run all-in-one biomedical NER models the Hugging Face way.

The files that travel inside every checkpoint live at the top level of the
source tree (``modeling_aioner.py``, ``pipeline_aioner.py``, ``aioner_scheme.py``,
``aioner_text.py``); this package holds what only users of the toolkit need.
"""

__version__ = "0.1.0"


def progress_bars_disabled() -> bool:
    """Whether ``TQDM_DISABLE`` asks for no progress bars. Our bars pass ``disable=`` (only the main process
    shows one), which hides tqdm's own reading of the variable, so it is read here; leniently: a value that
    is not a clear yes (empty, 0, no, anything else) leaves the bars on rather than stopping a run. A yes is
    what the Hugging Face libraries count as one (``huggingface_hub.constants.ENV_VARS_TRUE_VALUES``)."""
    import os

    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    return os.environ.get("TQDM_DISABLE", "").strip().upper() in ENV_VARS_TRUE_VALUES

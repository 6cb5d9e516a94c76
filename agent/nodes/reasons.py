"""Why a tool is skipped while its capability has not landed."""

NOT_YET = {
    "units": "atomized units (spaCy) are not available: they arrive with the memory and search issue",
    "references": "the reference pool (Chroma) is not available: it arrives with the memory and search issue",
    "rewrite": "prompt rewriting is not available: it arrives with the POS issue",
}

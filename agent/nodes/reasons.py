"""Why a tool is skipped while its capability has not landed."""

NOT_YET = {
    "rewrite": "prompt rewriting is not available: it arrives with the POS issue",
}

"""The web UI (`reelgraph ui`): a Gradio app over the same composition root, graph and sessions as the CLI.

:mod:`webui.backend` holds what the process keeps (settings, services, the chat session store,
the one-generation-at-a-time lock); :mod:`webui.views` turns plans, settings and run folders into
tables; :mod:`webui.app` lays them out in Gradio Blocks; :mod:`webui.safety` decides who may
reach the server and what an upload may be.
"""

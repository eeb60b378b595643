"""The HTTP layer: ``app.py`` holds the thin routes, ``core.py`` wires one Settings object and the
runner clients into what they call. The work is grouped by job:

- ``transport/``: middleware, deadlines, strict JSON, access control, error bodies, repeats;
- ``prediction/``: the one prediction flow every family shares (schemas to response);
- ``batch/``: many materials in one request (formats, blocks, screening, the /batch routes);
- ``design/``: the route of the design search, whose work is the top-level ``design/`` package.
"""

"""Inverse design: from a requirement ("under 3.3 g/cm3, stops 7.62x51 M80 at 10 mm, as hard as
possible") to the materials worth making.

- ``spec``: the request (fixed inputs, free inputs with bounds, constraints, objectives, budget),
  validated against the catalogue: a bad field is a 422 naming it;
- ``space``: the free inputs as an optimiser's parameters, and a parameter set as a complete
  single-route request body;
- ``evaluate``: candidates through the /batch routes' path (api/batch/flow.py), both families;
- ``pareto``: the non-dominated front and its hypervolume;
- ``search``: the kept optimiser (optuna's NSGA-II, ask/tell, a generation per runner block), the
  budget, the progress events and the answer;
- ``explore``: "what to test next": an acquisition over the intervals, K diverse suggestions.

The HTTP route (api/design/routes.py) only parses the body and streams or returns what ``search``
gives.
"""
